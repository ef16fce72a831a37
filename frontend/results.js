// Live results (docs/live-results.md): the server-rendered table, kept current through
// EventSource, or by polling with If-None-Match where streams are missing or keep failing.
// The newest results are kept in IndexedDB, so a page opened offline shows them with their age.

import { retryAfterMs } from "./backoff.js";
import { LAST_RESULTS, getOne, promisify, transact } from "./db.js";

const POLL_MS = 2000; // 2 s while visible: the results' max-age is 1 s
const MAX_POLL_MS = 30 * 1000; // 30 s: the slowest polling gets on repeated errors
const STREAM_FAILURES_BEFORE_POLLING = 3; // error events with no results event in between
const STREAM_RETRY_MS = 60 * 1000; // 1 min: while polling, try the stream again this often
const ANNOUNCE_MS = 5000; // 5 s: a screen reader hears the counts at most this often
const AGE_TICK_MS = 15 * 1000; // 15 s: how often the shown age is brought up to date

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

function ageText(knownAt, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - knownAt) / 1000));
  if (seconds < 60) return "just now";
  if (seconds < 3600) return relative.format(-Math.floor(seconds / 60), "minute");
  if (seconds < 86400) return relative.format(-Math.floor(seconds / 3600), "hour");
  return relative.format(-Math.floor(seconds / 86400), "day");
}

function share(votes, total) {
  return total > 0 ? Math.round((votes / total) * 100) : 0;
}

function votesText(count) {
  return count === 1 ? "1 vote" : `${count} votes`;
}

export function startResults(section) {
  const pollId = section.dataset.pollId;
  const rows = new Map([...section.querySelectorAll("tr[data-option-id]")].map((row) => [row.dataset.optionId, row]));
  const totalLine = section.querySelector("[data-results-total]");
  const freshness = section.querySelector("[data-results-freshness]");
  const announcer = section.querySelector("[data-results-announce]");
  const streamUrl = `/api/v1/polls/${encodeURIComponent(pollId)}/stream`;
  const resultsUrl = `/api/v1/polls/${encodeURIComponent(pollId)}/results`;

  const rendered = JSON.parse(section.dataset.results);
  let shown = { results: rendered, total: rendered.total, knownAt: Number(section.dataset.knownAt) };
  let live = false; // a stream or a poll has answered since the last failure
  let source = null;
  let streamFailures = 0;
  let polling = false;
  let pollTimer = 0;
  let pollErrors = 0;
  let etag = null;
  let lastAnnounced = 0;
  let announceTimer = 0;

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function render(results) {
    for (const option of results.options) {
      const row = rows.get(option.id);
      if (!row) continue;
      setText(row.querySelector("[data-votes]"), String(option.votes));
      setText(row.querySelector("[data-share]"), `${share(option.votes, results.total)}%`);
      const bar = row.querySelector("meter");
      bar.max = Math.max(1, results.total);
      bar.value = option.votes;
    }
    setText(totalLine, `${votesText(results.total)} in total.`);
  }

  function showFreshness() {
    if (live && navigator.onLine !== false) setText(freshness, "Live: updated as votes arrive.");
    else setText(freshness, `Offline: the last known results, from ${ageText(shown.knownAt)}.`);
  }

  // A polite summary, at most every ANNOUNCE_MS, so a busy poll does not talk over the page.
  function announce() {
    clearTimeout(announceTimer);
    const wait = lastAnnounced + ANNOUNCE_MS - Date.now();
    if (wait > 0) {
      announceTimer = setTimeout(announce, wait);
      return;
    }
    lastAnnounced = Date.now();
    const parts = shown.results.options.map((o) => `${o.label} ${o.votes} (${share(o.votes, shown.total)}%)`);
    setText(announcer, `Results: ${parts.join(", ")}. ${votesText(shown.total)} in total.`);
  }

  // `total` only grows and identifies the counts, so an older object is ignored.
  function accept(results, knownAt = Date.now()) {
    live = true;
    if (results.poll_id !== pollId) return;
    const changed = results.total > shown.total;
    if (results.total < shown.total) return;
    shown = { results, total: results.total, knownAt };
    if (changed) {
      render(results);
      announce();
    }
    showFreshness();
    save().catch(() => {});
  }

  function save() {
    const record = { pollId, results: shown.results, knownAt: shown.knownAt };
    return transact([LAST_RESULTS], "readwrite", (tx) => promisify(tx.objectStore(LAST_RESULTS).put(record)));
  }

  function wentOffline() {
    // The counts were current until now.
    if (live) shown.knownAt = Date.now();
    live = false;
    showFreshness();
    save().catch(() => {});
  }

  // --- the stream -----------------------------------------------------------------------
  function openStream() {
    source?.close();
    source = new EventSource(streamUrl);
    source.addEventListener("results", (event) => {
      streamFailures = 0;
      if (polling) stopPolling();
      accept(JSON.parse(event.data));
    });
    source.addEventListener("open", () => {
      // Resuming with an unchanged total sends no event: the counts shown are still current.
      live = true;
      shown.knownAt = Date.now();
      showFreshness();
    });
    source.addEventListener("error", () => {
      if (live) wentOffline();
      streamFailures += 1;
      // CLOSED: a final answer (404, 503) that EventSource will not retry by itself.
      if (source.readyState === EventSource.CLOSED || streamFailures >= STREAM_FAILURES_BEFORE_POLLING) {
        source.close();
        source = null;
        startPolling();
        setTimeout(retryStream, STREAM_RETRY_MS);
      }
    });
  }

  function retryStream() {
    if (source || !polling || navigator.onLine === false) return;
    streamFailures = 0;
    openStream();
  }

  // --- polling --------------------------------------------------------------------------
  function startPolling() {
    if (polling) return;
    polling = true;
    pollErrors = 0;
    schedulePoll(0);
  }

  function stopPolling() {
    polling = false;
    clearTimeout(pollTimer);
  }

  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    if (polling && document.visibilityState !== "hidden") pollTimer = setTimeout(pollOnce, delay);
  }

  async function pollOnce() {
    let retryAfter = null;
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch(resultsUrl, { headers, cache: "no-store" });
      if (response.status === 404) {
        stopPolling();
        return;
      }
      if (response.status === 200 || response.status === 304) {
        pollErrors = 0;
        if (response.status === 200) {
          etag = response.headers.get("ETag");
          accept(await response.json());
        } else {
          accept(shown.results);
        }
        schedulePoll(POLL_MS);
        return;
      }
      retryAfter = retryAfterMs(response.headers.get("Retry-After"));
    } catch {
      // A network error: back off below.
    }
    if (live) wentOffline();
    pollErrors += 1;
    const ceiling = Math.min(MAX_POLL_MS, POLL_MS * 2 ** pollErrors);
    schedulePoll(Math.max(retryAfter ?? 0, POLL_MS + Math.random() * (ceiling - POLL_MS)));
  }

  // Where the device knows it is offline, the stream is as good as gone (and EventSource might
  // not notice a dead connection for a long time): close it, and start afresh when back online.
  // A fresh stream starts with the current counts, so nothing missed meanwhile is lost.
  function connect() {
    if (navigator.onLine === false) return;
    streamFailures = 0;
    if ("EventSource" in self) openStream();
    else startPolling();
  }

  function disconnect() {
    source?.close();
    source = null;
    stopPolling();
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") schedulePoll(0);
    else clearTimeout(pollTimer);
  });
  window.addEventListener("offline", () => {
    disconnect();
    wentOffline();
  });
  window.addEventListener("online", () => {
    disconnect();
    connect();
  });
  setInterval(showFreshness, AGE_TICK_MS);

  // The page's own counts may be older than the ones this device saw last (an offline copy).
  getOne(LAST_RESULTS, pollId)
    .then((saved) => {
      if (saved && saved.results.total > shown.total) {
        shown = { results: saved.results, total: saved.results.total, knownAt: saved.knownAt };
        render(saved.results);
      }
    })
    .catch(() => {})
    .finally(() => {
      showFreshness();
      connect();
    });
}
