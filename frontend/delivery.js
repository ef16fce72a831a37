// Sends queued votes and records each outcome. Runs in the service worker, or in a page that
// no worker controls yet; the Web Lock makes them take turns, so only one sender runs at a time.

import { b64urlDecode } from "./b64.js";
import { isRetryable, nextAttemptAt, retryAfterMs } from "./backoff.js";
import { SERVER_KEYS, getOne, promisify, transact } from "./db.js";
import { announceChange } from "./notify.js";
import { FAILED, QUEUED, SENDING, allUnconfirmed, confirmVote, requeueInterrupted, updateVote } from "./outbox.js";
import { ReceiptError, verifyReceipt, voteBody } from "./protocol.js";

export const SENDER_LOCK = "vote-outbox-sender";
export const SYNC_TAG = "vote-outbox";
export const REQUEST_TIMEOUT_MS = 30 * 1000; // 30 s: slow networks, but never a hung sender
export const NETWORK_ERROR = "network error";
export const RECEIPT_REJECTED = "receipt did not verify";

// Plain words for the final answers of docs/protocol.md, shown beside a failed vote.
const REASONS = {
  "already-voted": "already voted",
  "poll-closed": "poll closed",
  "poll-not-found": "poll not found",
  "not-found": "poll not found",
  "unknown-option": "unknown option",
  "invalid-signature": "signature rejected",
  "clock-in-future": "this device's clock is ahead",
  "idempotency-key-reused": "vote changed after sending",
  "payload-too-large": "vote too large",
};

// Sends every vote that is due. `reconnected` makes votes that failed only for want of a
// network due at once, since the network is back.
export async function deliverAll({ reconnected = false } = {}) {
  const run = async () => {
    if (await requeueInterrupted()) announceChange();
    // The browser knows it is offline: an attempt would only fail and push the backoff further.
    if (navigator.onLine === false) return;
    const tried = new Set();
    for (;;) {
      const now = Date.now();
      const due = (await allUnconfirmed())
        .filter((v) => v.status === QUEUED && !tried.has(v.id))
        .filter((v) => v.nextAttemptAt <= now || (reconnected && v.lastError === NETWORK_ERROR))
        .sort((a, b) => a.createdAt - b.createdAt);
      if (due.length === 0) return;
      tried.add(due[0].id);
      await deliver(due[0]);
    }
  };
  // Without Web Locks (old browsers) there is no safe way to spot an interrupted send.
  if (!navigator.locks) return run();
  return navigator.locks.request(SENDER_LOCK, run);
}

async function deliver(vote) {
  await updateVote(vote.id, { status: SENDING });
  announceChange();
  let outcome;
  try {
    outcome = await send(vote);
  } catch {
    outcome = { retry: NETWORK_ERROR };
  }
  if (outcome.confirmed) {
    await confirmVote(vote.id, outcome.confirmed);
  } else if (outcome.retry) {
    const retries = vote.retries + 1;
    await updateVote(vote.id, {
      status: QUEUED,
      retries,
      nextAttemptAt: nextAttemptAt(retries, outcome.retryAfter),
      lastError: outcome.retry,
    });
  } else {
    await updateVote(vote.id, { status: FAILED, lastError: outcome.failed });
  }
  announceChange();
}

async function send(vote) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(`/api/v1/polls/${encodeURIComponent(vote.pollId)}/votes`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": `"${vote.idempotencyKey}"` },
      body: voteBody(vote),
      cache: "no-store",
      signal: abort.signal,
    });
    if (response.status === 200 || response.status === 201) {
      return await checkReceipt(await response.json().catch(() => null), vote);
    }
    const problem = await response.json().catch(() => ({}));
    const type = typeof problem.type === "string" ? problem.type : "";
    if (isRetryable(response.status, type)) {
      return { retry: `server busy (${response.status})`, retryAfter: retryAfterMs(response.headers.get("Retry-After")) };
    }
    return { failed: REASONS[type.split("/").pop()] ?? problem.title ?? `refused (${response.status})` };
  } finally {
    clearTimeout(timer);
  }
}

async function checkReceipt(receipt, vote) {
  try {
    const payload = await verifyReceipt(receipt, vote, serverKey);
    return {
      confirmed: {
        voteId: vote.id,
        pollId: vote.pollId,
        optionId: vote.optionId,
        idempotencyKey: vote.idempotencyKey,
        createdAt: vote.createdAt,
        seq: payload.seq,
        acceptedAt: payload.accepted_at,
        receipt,
      },
    };
  } catch (error) {
    // Not a confirmation: the vote stays queued, and a retry fetches the same receipt again.
    if (error instanceof ReceiptError) return { retry: `${RECEIPT_REJECTED}: ${error.message}` };
    throw error;
  }
}

// Receipt keys are cached by kid; an unknown kid refreshes the cache once from GET /api/v1/keys.
async function serverKey(kid) {
  let known = await getOne(SERVER_KEYS, kid);
  if (!known) {
    const response = await fetch("/api/v1/keys", { cache: "no-store" });
    if (!response.ok) throw new Error(`keys: HTTP ${response.status}`);
    const { keys } = await response.json();
    await transact([SERVER_KEYS], "readwrite", async (tx) => {
      for (const key of keys) await promisify(tx.objectStore(SERVER_KEYS).put({ kid: key.kid, publicKey: key.public_key }));
    });
    known = await getOne(SERVER_KEYS, kid);
  }
  return known ? b64urlDecode(known.publicKey) : null;
}
