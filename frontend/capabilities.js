// What voting needs from the browser, checked when the page loads, so that a voter whose browser
// cannot vote is told so in words (advice.js) before choosing, never after.

import { openDb } from "./db.js";

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

// Why this browser cannot vote ("no-signing", "no-storage"; advice.js words them), or null.
export async function cannotVoteBecause() {
  if (!(await canSign())) return "no-signing";
  if (!(await canStore())) return "no-storage";
  return null;
}
