// The outbox: votes on this device until a verified receipt confirms them. IndexedDB only;
// the delivery policy lives in delivery.js and backoff.js.
// No retention limit: nothing here deletes an unconfirmed vote, whatever its age.

import { OUTBOX, RECEIPTS, promisify, transact } from "./db.js";

export const QUEUED = "queued";
export const SENDING = "sending";
export const CONFIRMED = "confirmed";
export const FAILED = "failed";

// Adds the vote unless this device already has a live or confirmed vote in the poll.
// The check and the write share one transaction, so two tabs cannot both queue a vote.
export function queueVote(vote) {
  return transact([OUTBOX, RECEIPTS], "readwrite", async (tx) => {
    const confirmed = await promisify(tx.objectStore(RECEIPTS).index("pollId").count(vote.pollId));
    const earlier = await promisify(tx.objectStore(OUTBOX).index("pollId").getAll(vote.pollId));
    if (confirmed > 0 || earlier.some((v) => v.status !== FAILED)) return false;
    await promisify(tx.objectStore(OUTBOX).add(vote));
    return true;
  });
}

export function pollVotes(pollId) {
  return transact([OUTBOX, RECEIPTS], "readonly", async (tx) => ({
    outbox: await promisify(tx.objectStore(OUTBOX).index("pollId").getAll(pollId)),
    receipts: await promisify(tx.objectStore(RECEIPTS).index("pollId").getAll(pollId)),
  }));
}

export function allUnconfirmed() {
  return transact([OUTBOX], "readonly", async (tx) => {
    const votes = await promisify(tx.objectStore(OUTBOX).getAll());
    return votes.filter((v) => v.status === QUEUED || v.status === SENDING);
  });
}

// Marks votes as being sent, in one transaction (a batch of up to 100).
export function markSending(ids) {
  return transact([OUTBOX], "readwrite", async (tx) => {
    const store = tx.objectStore(OUTBOX);
    for (const id of ids) {
      const vote = await promisify(store.get(id));
      if (vote) await promisify(store.put({ ...vote, status: SENDING }));
    }
  });
}

// Records the outcomes of a batch in one transaction. Each entry is `{ id, receipt }` (the vote
// moves to the receipts) or `{ id, changes }` (merged into the stored vote).
export function settleVotes(entries) {
  return transact([OUTBOX, RECEIPTS], "readwrite", async (tx) => {
    const outbox = tx.objectStore(OUTBOX);
    for (const { id, receipt, changes } of entries) {
      if (receipt) {
        await promisify(tx.objectStore(RECEIPTS).put(receipt));
        await promisify(outbox.delete(id));
        continue;
      }
      const vote = await promisify(outbox.get(id));
      if (vote) await promisify(outbox.put({ ...vote, ...changes }));
    }
  });
}

// Call only while holding the sender lock: then no one is sending, so a vote still marked
// `sending` was cut off by a crash or a closed browser.
// Resolves with the number of votes put back.
export function requeueInterrupted() {
  return transact([OUTBOX], "readwrite", async (tx) => {
    const store = tx.objectStore(OUTBOX);
    const interrupted = (await promisify(store.getAll())).filter((vote) => vote.status === SENDING);
    for (const vote of interrupted) await promisify(store.put({ ...vote, status: QUEUED }));
    return interrupted.length;
  });
}
