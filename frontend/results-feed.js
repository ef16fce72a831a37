// How a poll's results reach the page (docs/live-results.md): EventSource, or polling with
// If-None-Match where streams are missing or keep failing. It tells its listener what the
// service said and leaves the showing to it.

import { backoffDelay, retryAfterMs } from "./backoff.js";

const POLL_MS = 2000; // 2 s while visible: the results' max-age is 1 s
const MAX_POLL_MS = 30 * 1000; // 30 s: the slowest polling gets on repeated errors
// After n errors in a row, a poll waits between POLL_MS and POLL_MS * 2^n (at most MAX_POLL_MS).
const POLL_BACKOFF = { base: 2 * POLL_MS, cap: MAX_POLL_MS, floor: POLL_MS };
const STREAM_FAILURES_BEFORE_POLLING = 3; // error events with no results event in between
const STREAM_RETRY_MS = 60 * 1000; // 1 min: while polling, try the stream again this often

// `listener` hears:
//   results(results)  counts from a `results` event or a poll's 200
//   opened()          the stream (re)opened; resuming with an unchanged total sends no event
//   unchanged()       a poll's 304: the counts are those of the last 200
//   failed()          the stream or a poll failed
//   offline()         the device went offline; the feed waits for `online`
// Nothing is fetched before connect(), so the listener can first show what it has.
export function resultsFeed(pollId, listener) {
  const streamUrl = `/api/v1/polls/${encodeURIComponent(pollId)}/stream`;
  const resultsUrl = `/api/v1/polls/${encodeURIComponent(pollId)}/results`;
  let source = null;
  let streamFailures = 0;
  let polling = false;
  let pollTimer = 0;
  let pollErrors = 0;
  let etag = null;

  // --- the stream -----------------------------------------------------------------------
  function openStream() {
    source?.close();
    source = new EventSource(streamUrl);
    source.addEventListener("results", (event) => {
      streamFailures = 0;
      if (polling) stopPolling();
      listener.results(JSON.parse(event.data));
    });
    source.addEventListener("open", () => listener.opened());
    source.addEventListener("error", () => {
      listener.failed();
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
          listener.results(await response.json());
        } else {
          listener.unchanged();
        }
        schedulePoll(POLL_MS);
        return;
      }
      retryAfter = retryAfterMs(response.headers.get("Retry-After"));
    } catch {
      // A network error: back off below.
    }
    listener.failed();
    pollErrors += 1;
    schedulePoll(Math.max(retryAfter ?? 0, backoffDelay(pollErrors, Math.random, POLL_BACKOFF)));
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
    listener.offline();
  });
  window.addEventListener("online", () => {
    disconnect();
    connect();
  });

  return { connect };
}
