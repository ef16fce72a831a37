// Every open page and the worker hear of each change to the outbox through one BroadcastChannel.

export const CHANNEL = "vote-outbox";

let sender = null;

export function announceChange() {
  sender ??= new BroadcastChannel(CHANNEL);
  sender.postMessage({ type: "changed" });
}

// A separate channel object, so a page also hears its own announcements.
export function onChange(listener) {
  new BroadcastChannel(CHANNEL).addEventListener("message", listener);
}
