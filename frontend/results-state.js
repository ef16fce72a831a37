// What the page knows of a poll's results: the newest counts, since when they are known, and
// whether the service is answering. The newest counts are kept in IndexedDB, because a page
// opened offline (the worker's copy) holds the counts of when that copy was made.

import { LAST_RESULTS, getOne, promisify, transact } from "./db.js";

export class ResultsState {
  constructor(pollId, results, knownAt) {
    this.pollId = pollId;
    this.results = results;
    this.knownAt = knownAt;
    this.live = false; // a stream or a poll has answered since the last failure
    this.connecting = true; // nothing has answered or failed yet: the counts are the page's own
  }

  // `total` only grows and identifies the counts (docs/live-results.md): a lower one is older
  // (another worker's can arrive late), an equal one is the same counts.
  isStale(results) {
    return results.poll_id !== this.pollId || results.total < this.results.total;
  }

  isNewer(results) {
    return results.total > this.results.total;
  }

  // Whether the counts this device saw last are newer than the page's own.
  async restore() {
    const saved = await getOne(LAST_RESULTS, this.pollId);
    if (!saved || !this.isNewer(saved.results)) return false;
    this.results = saved.results;
    this.knownAt = saved.knownAt;
    return true;
  }

  save() {
    const record = { pollId: this.pollId, results: this.results, knownAt: this.knownAt };
    // A lost save costs only the offline copy's freshness; the page shows the counts anyway.
    transact([LAST_RESULTS], "readwrite", (tx) => promisify(tx.objectStore(LAST_RESULTS).put(record))).catch(() => {});
  }
}
