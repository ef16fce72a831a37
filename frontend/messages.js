// The catalogue of the page's language. This file is English, the language of the messages
// themselves, so it holds none; build.py puts each language's in its place, compiled from
// app/locale/<lang>/LC_MESSAGES/messages.po, in that language's own bundle.

export const LANG = "en";
export const MESSAGES = {};
export function pluralIndex(n) {
  return n === 1 ? 0 : 1;
}
