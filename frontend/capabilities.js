// What voting needs from the browser, checked when the page loads, so that a voter whose browser
// cannot vote is told so in words before choosing, never after.

import { openDb } from "./db.js";

export const NO_SIGNING =
  "This browser cannot sign a vote, so it cannot vote here. Update it, or open this page in a recent Chrome, Edge, Firefox or Safari.";
export const NO_STORAGE =
  "This browser does not let this page keep your vote on this device (private browsing can do this), so it cannot vote here. Open this page in a normal window or in another browser.";

// Ed25519 in Web Crypto: Chromium 137+, Firefox 129+, Safari 17+. Making a throwaway key is the
// only reliable test; `crypto.subtle` itself is missing outside a secure context.
async function canSign() {
  try {
    await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    return true;
  } catch {
    return false;
  }
}

// IndexedDB can exist and still refuse to open (some private modes, storage turned off).
async function canStore() {
  try {
    await openDb();
    return true;
  } catch {
    return false;
  }
}

// The sentence to show when this browser cannot vote, or null when it can.
export async function cannotVoteBecause() {
  if (!(await canSign())) return NO_SIGNING;
  if (!(await canStore())) return NO_STORAGE;
  return null;
}

// A failure on this device, in words: exception text never reaches the voter.
export function deviceTrouble(error) {
  if (error?.name === "QuotaExceededError") {
    return "Your vote could not be saved: this device is out of storage space. Free some space, then vote again.";
  }
  return "Something went wrong on this device, and your vote may not have been saved. Reload the page, then vote again if your vote is not listed below.";
}
