// When to try again, a vote or a poll of the live results: exponential backoff with full jitter,
// honouring Retry-After.
// https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/

export const BASE_DELAY_MS = 1000; // 1 s
export const MAX_DELAY_MS = 5 * 60 * 1000; // 5 min

// `retries` counts the failed attempts so far, from 1. The wait falls evenly in [floor, ceiling),
// the ceiling being `base` after the first failure, doubling up to `cap`. The defaults are the
// outbox's; polling the results never waits less than its usual interval, hence `floor`.
export function backoffDelay(
  retries,
  random = Math.random,
  { base = BASE_DELAY_MS, cap = MAX_DELAY_MS, floor = 0 } = {},
) {
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, retries - 1));
  return floor + Math.floor(random() * (ceiling - floor));
}

// Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or unreadable.
export function retryAfterMs(header, now = Date.now()) {
  if (!header) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

// The server's wait wins over a shorter jittered delay; it is not capped, since the server knows best.
export function nextAttemptAt(retries, retryAfter, now = Date.now(), random = Math.random) {
  return now + Math.max(backoffDelay(retries, random), retryAfter ?? 0);
}

// docs/protocol.md: 408, 429, 5xx and 409 request-in-flight mean "not processed, retry".
export function isRetryable(status, problemType = "") {
  if (status === 408 || status === 429 || status >= 500) return true;
  return status === 409 && problemType.endsWith("/request-in-flight");
}
