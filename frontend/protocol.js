// Vote protocol v1 (docs/protocol.md): the signed bytes, the request body and the receipt check.

import { b64urlDecode, b64urlEncode } from "./b64.js";

const utf8 = new TextEncoder();
const ED25519 = { name: "Ed25519" };

export class ReceiptError extends Error {}

export function signingBytes(vote) {
  const lines = ["vote/v1", vote.pollId, vote.optionId, vote.id, vote.idempotencyKey, String(vote.createdAt)];
  return utf8.encode(lines.join("\n"));
}

export async function signVote(vote, privateKey) {
  return b64urlEncode(await crypto.subtle.sign(ED25519, privateKey, signingBytes(vote)));
}

// Built from the stored fields in a fixed order, so every retry sends the same bytes.
export function voteBody(vote) {
  return JSON.stringify({
    vote_id: vote.id,
    idempotency_key: vote.idempotencyKey,
    poll_id: vote.pollId,
    option_id: vote.optionId,
    created_at: vote.createdAt,
    public_key: vote.publicKey,
    signature: vote.signature,
    // Outside the signed bytes; only sent when present, so votes without them read as before.
    ...(vote.stamp ? { stamp: vote.stamp } : {}),
    ...(vote.invitation ? { invitation: vote.invitation } : {}),
  });
}

export async function ballotHash(vote) {
  const signed = signingBytes(vote);
  const signature = b64urlDecode(vote.signature);
  const bytes = new Uint8Array(signed.length + signature.length);
  bytes.set(signed);
  bytes.set(signature, signed.length);
  return b64urlEncode(await crypto.subtle.digest("SHA-256", bytes));
}

// Returns the receipt's payload only when all three checks of the protocol pass.
// `publicKeyFor(kid)` resolves to the raw public key bytes, or null for an unknown kid.
export async function verifyReceipt(receipt, vote, publicKeyFor) {
  if (!receipt || typeof receipt.payload !== "string" || typeof receipt.signature !== "string") {
    throw new ReceiptError("malformed receipt");
  }
  let payloadBytes;
  let payload;
  let signature;
  try {
    payloadBytes = b64urlDecode(receipt.payload);
    signature = b64urlDecode(receipt.signature);
    payload = JSON.parse(new TextDecoder().decode(payloadBytes));
  } catch {
    throw new ReceiptError("malformed receipt");
  }
  if (payload.kid !== receipt.kid) throw new ReceiptError("key id mismatch");
  const raw = await publicKeyFor(receipt.kid);
  if (!raw) throw new ReceiptError("unknown signing key");
  const key = await crypto.subtle.importKey("raw", raw, ED25519, false, ["verify"]);
  if (!(await crypto.subtle.verify(ED25519, key, signature, payloadBytes))) {
    throw new ReceiptError("bad signature");
  }
  const expected = { poll_id: vote.pollId, vote_id: vote.id, idempotency_key: vote.idempotencyKey };
  for (const [field, value] of Object.entries(expected)) {
    if (payload[field] !== value) throw new ReceiptError(`${field} mismatch`);
  }
  if (payload.ballot_hash !== (await ballotHash(vote))) throw new ReceiptError("ballot hash mismatch");
  return payload;
}
