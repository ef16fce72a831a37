// Sends queued votes and records each outcome. Runs in the service worker, or in a page that
// no worker controls yet; the Web Lock makes them take turns, so only one sender runs at a time.

import { b64urlDecode } from "./b64.js";
import { isRetryable, nextAttemptAt, retryAfterMs } from "./backoff.js";
import { SERVER_KEYS, getOne, promisify, transact } from "./db.js";
import { announceChange } from "./notify.js";
import { FAILED, QUEUED, allUnconfirmed, markSending, requeueInterrupted, settleVotes } from "./outbox.js";
import { ReceiptError, verifyReceipt, voteBody } from "./protocol.js";
import { NETWORK_ERROR, RECEIPT_REJECTED } from "./reasons.js";

export const SENDER_LOCK = "vote-outbox-sender";
export const SYNC_TAG = "vote-outbox";
export const REQUEST_TIMEOUT_MS = 30 * 1000; // 30 s: slow networks, but never a hung sender
export const BATCH_MAX_VOTES = 100; // docs/protocol.md: at most 100 votes per batch
export const BATCH_URL = "/api/v1/votes/batch";
export const BATCHES_IN_FLIGHT = 2; // the sender's requests at once, each with different votes

// Sends every vote that is due. `reconnected` makes votes that failed only for want of a
// network due at once, since the network is back. A backlog goes in batches of up to
// BATCH_MAX_VOTES through POST /api/v1/votes/batch; a single due vote through its own endpoint.
export async function deliverAll({ reconnected = false } = {}) {
  const run = async () => {
    if (await requeueInterrupted()) announceChange();
    // The browser knows it is offline: an attempt would only fail and push the backoff further.
    if (navigator.onLine === false) return;
    const tried = new Set();
    const publicKeyFor = serverKeys();
    for (;;) {
      const now = Date.now();
      const due = (await allUnconfirmed())
        .filter((v) => v.status === QUEUED && !tried.has(v.id))
        .filter((v) => !v.stampBits || v.stamp) // the page is still finding its stamp
        .filter((v) => v.nextAttemptAt <= now || (reconnected && v.lastError === NETWORK_ERROR))
        .sort((a, b) => a.createdAt - b.createdAt);
      if (due.length === 0) return;
      for (const vote of due) tried.add(vote.id);
      const chunks = [];
      for (let i = 0; i < due.length; i += BATCH_MAX_VOTES) chunks.push(due.slice(i, i + BATCH_MAX_VOTES));
      // A few requests in flight, so the device verifies and records one batch while the service
      // commits the next. Each vote is in one request only.
      const next = () => (chunks.length ? deliver(chunks.shift(), publicKeyFor).then(next) : null);
      // Settled, not raced: the lock must outlast every request, even after one of them fails.
      const lanes = await Promise.allSettled(Array.from({ length: BATCHES_IN_FLIGHT }, next));
      const failed = lanes.find((lane) => lane.status === "rejected");
      if (failed) throw failed.reason;
    }
  };
  // Without Web Locks (old browsers) there is no safe way to spot an interrupted send.
  if (!navigator.locks) return run();
  return navigator.locks.request(SENDER_LOCK, run);
}

async function deliver(votes, publicKeyFor) {
  await markSending(votes.map((v) => v.id));
  announceChange();
  let outcomes;
  try {
    outcomes = votes.length === 1 ? [await send(votes[0], publicKeyFor)] : await sendBatch(votes, publicKeyFor);
  } catch {
    outcomes = votes.map(() => ({ retry: NETWORK_ERROR }));
  }
  await settleVotes(votes.map((vote, i) => settlement(vote, outcomes[i])));
  announceChange();
}

// What the outbox records for one vote's outcome: the same rule for single and batched sends.
function settlement(vote, outcome) {
  if (outcome.confirmed) return { id: vote.id, receipt: outcome.confirmed };
  if (outcome.retry) {
    const retries = vote.retries + 1;
    const changes = {
      status: QUEUED,
      retries,
      nextAttemptAt: nextAttemptAt(retries, outcome.retryAfter),
      lastError: outcome.retry,
    };
    return { id: vote.id, changes };
  }
  return { id: vote.id, changes: { status: FAILED, lastError: outcome.failed } };
}

function post(url, body, headers = {}) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body,
    cache: "no-store",
    signal: abort.signal,
  }).finally(() => clearTimeout(timer));
}

// One vote's answer (a response's status and body, or a batch item's), as docs/protocol.md says.
async function outcomeOf(status, body, vote, publicKeyFor) {
  if (status === 200 || status === 201) return checkReceipt(body, vote, publicKeyFor);
  const type = typeof body?.type === "string" ? body.type : "";
  if (isRetryable(status, type)) return { retry: `server busy (${status})` };
  // Recorded by the type's last part ("poll-closed"): advice.js words it in the page's language.
  const slug = type.split("/").pop();
  return { failed: /^[a-z0-9-]+$/.test(slug) ? slug : (body?.title ?? `refused (${status})`) };
}

async function send(vote, publicKeyFor) {
  const response = await post(`/api/v1/polls/${encodeURIComponent(vote.pollId)}/votes`, voteBody(vote), {
    "Idempotency-Key": `"${vote.idempotencyKey}"`,
  });
  const body = await response.json().catch(() => null);
  const outcome = await outcomeOf(response.status, body, vote, publicKeyFor);
  if (outcome.retry && response.status !== 200 && response.status !== 201) {
    outcome.retryAfter = retryAfterMs(response.headers.get("Retry-After"));
  }
  return outcome;
}

// Each vote's result is handled as its own send's would be. When the request as a whole fails
// (network, 5xx, 429), every vote in it goes back to the queue; when the service refuses the
// batch itself (an older service without the endpoint, say), each vote is sent on its own.
async function sendBatch(votes, publicKeyFor) {
  const response = await post(BATCH_URL, `{"votes":[${votes.map(voteBody).join(",")}]}`);
  const body = await response.json().catch(() => null);
  if (response.status === 200 && Array.isArray(body?.results) && body.results.length === votes.length) {
    return Promise.all(
      votes.map((vote, i) => {
        const item = body.results[i] ?? {};
        return outcomeOf(item.status, item.receipt ?? item.problem, vote, publicKeyFor).catch(() => ({
          retry: NETWORK_ERROR,
        }));
      }),
    );
  }
  const type = typeof body?.type === "string" ? body.type : "";
  if (response.status === 200 || isRetryable(response.status, type)) {
    const retryAfter = retryAfterMs(response.headers.get("Retry-After"));
    return votes.map(() => ({ retry: `server busy (${response.status})`, retryAfter }));
  }
  const outcomes = [];
  for (const vote of votes) outcomes.push(await send(vote, publicKeyFor).catch(() => ({ retry: NETWORK_ERROR })));
  return outcomes;
}

async function checkReceipt(receipt, vote, publicKeyFor) {
  try {
    const payload = await verifyReceipt(receipt, vote, publicKeyFor);
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

// Receipt keys are cached by kid in IndexedDB; an unknown kid refreshes the cache once from
// GET /api/v1/keys. Each delivery run looks a kid up once, however many receipts it signed.
function serverKeys() {
  const known = new Map();
  return (kid) => {
    if (!known.has(kid)) {
      const lookup = serverKey(kid);
      known.set(kid, lookup);
      lookup.catch(() => known.delete(kid)); // a failed look-up is tried again
    }
    return known.get(kid);
  };
}

async function serverKey(kid) {
  let known = await getOne(SERVER_KEYS, kid);
  if (!known) {
    await storeServerKeys({ cache: "no-store" });
    known = await getOne(SERVER_KEYS, kid);
  }
  return known ? b64urlDecode(known.publicKey) : null;
}

// Fetches the receipt keys into IndexedDB. The page calls it while idle, so that a receipt is
// checked without a round trip of its own; that fetch may use the HTTP cache (the answer is
// cacheable for minutes), which also serves the ballot log's check its log keys.
export async function storeServerKeys(init = {}) {
  const response = await fetch("/api/v1/keys", init);
  if (!response.ok) throw new Error(`keys: HTTP ${response.status}`);
  const { keys } = await response.json();
  await transact([SERVER_KEYS], "readwrite", async (tx) => {
    for (const key of keys) await promisify(tx.objectStore(SERVER_KEYS).put({ kid: key.kid, publicKey: key.public_key }));
  });
}
