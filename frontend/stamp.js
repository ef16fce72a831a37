// The page's side of the proof-of-work stamp: a vote is queued at once without it, the worker
// (pow-worker.js) finds it, and the stamp is stored with the vote; delivery holds a vote back
// until its stamp is there. A page opened later finishes any stamp left unfinished.

import { announceChange } from "./notify.js";
import { QUEUED, pollVotes, settleVotes } from "./outbox.js";

const SLOW_MS = 1000; // past this, the page says in words that it is still working

let solving = null;

// Resolves when every queued vote of the poll that needs a stamp has one.
export function finishStamps(pollId, workerUrl, onProgress) {
  if (!solving) {
    solving = solveAll(pollId, workerUrl, onProgress).finally(() => {
      solving = null;
    });
  }
  return solving;
}

async function solveAll(pollId, workerUrl, onProgress) {
  const { outbox } = await pollVotes(pollId);
  for (const vote of outbox.filter((v) => v.status === QUEUED && v.stampBits && !v.stamp)) {
    const stamp = await solveOne(vote, workerUrl, onProgress);
    await settleVotes([{ id: vote.id, changes: { stamp } }]);
    announceChange();
  }
  onProgress(null);
}

function solveOne(vote, workerUrl, onProgress) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl);
    const started = Date.now();
    const expected = 2 ** vote.stampBits;
    worker.onmessage = (event) => {
      const { stamp, tried, error } = event.data;
      if (stamp !== undefined) {
        worker.terminate();
        resolve(stamp);
      } else if (error !== undefined) {
        worker.terminate();
        reject(new Error(error));
      } else if (Date.now() - started >= SLOW_MS) {
        onProgress(Math.min(99, Math.round((100 * tried) / expected)));
      }
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(event.message || "the proof-of-work worker failed"));
    };
    worker.postMessage({ pollId: vote.pollId, publicKey: vote.publicKey, difficulty: vote.stampBits });
  });
}
