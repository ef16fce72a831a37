// One Ed25519 key pair per poll, made on this device and never exportable: the private key
// lives only as a CryptoKey in IndexedDB. One key casts one vote per poll (docs/protocol.md).

import { b64urlEncode } from "./b64.js";
import { DEVICE_KEYS, getOne, promisify, transact } from "./db.js";

export async function deviceKeyFor(pollId) {
  const existing = await getOne(DEVICE_KEYS, pollId);
  if (existing) return existing;
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  // Public keys stay exportable even when the pair is not.
  const raw = await crypto.subtle.exportKey("raw", pair.publicKey);
  const record = { pollId, privateKey: pair.privateKey, publicKey: b64urlEncode(raw) };
  try {
    await transact([DEVICE_KEYS], "readwrite", (tx) => promisify(tx.objectStore(DEVICE_KEYS).add(record)));
    return record;
  } catch (error) {
    // Another tab made a key first: use that one, so the device keeps a single key.
    if (error?.name === "ConstraintError") return getOne(DEVICE_KEYS, pollId);
    throw error;
  }
}
