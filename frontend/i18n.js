// Words in the page's language: each message is looked up in the bundled catalogue (messages.js,
// one per language), and numbers, shares and times go through Intl in the same language.
// Placeholders are `{name}`; extraction (babel.cfg) finds `_`, `ngettext`, `N_` and `K_`.

import { LANG, MESSAGES, pluralIndex } from "./messages.js";

export const LANGUAGE = LANG;

const numbers = new Intl.NumberFormat(LANG);
const percents = new Intl.NumberFormat(LANG, { style: "percent", maximumFractionDigits: 0 });

export function formatNumber(n) {
  return numbers.format(n);
}

// `part` of `whole` as a share, e.g. "62%", "62 %", "٦٢٪".
export function formatShare(part, whole) {
  return percents.format(whole > 0 ? part / whole : 0);
}

function fillIn(text, values) {
  if (!values) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export function _(message, values) {
  return fillIn(MESSAGES[message] || message, values);
}

// `{n}` in the form is the count, written the language's way. In a translated bundle build.py
// has put the language's forms, all of them, in place of `singular`.
export function ngettext(singular, plural, n, values) {
  const forms = Array.isArray(singular) ? singular : MESSAGES[singular];
  const translated = Array.isArray(forms) ? forms[pluralIndex(n)] : null;
  return fillIn(translated || (n === 1 ? singular : plural), { n: formatNumber(n), ...values });
}

// Marks a message where it is defined, to be shown with `_(message)`: build.py translates it in
// place, as it does `_("…")`.
export function N_(message) {
  return message;
}

// Marks a message kept in English as a key (stored with a vote, say, or compared): `_(key)` finds
// its translation at run time, in MESSAGES.
export function K_(message) {
  return message;
}
