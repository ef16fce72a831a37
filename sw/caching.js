// Offline copies: hashed assets cache-first (their names change with their content), the voter's
// pages from their copy while it is refreshed (stale-while-revalidate), other pages network-first
// with the last good copy as the fallback.

import { BY_LANGUAGE, PRECACHE, VERSION } from "./manifest.js";

export const CACHE_PREFIX = "vote-";
export const ASSET_CACHE = `${CACHE_PREFIX}assets-${VERSION}`;
export const PAGE_CACHE = `${CACHE_PREFIX}pages-${VERSION}`;
export const POLL_PAGES = "/polls/"; // the pages voters need offline
export const VERIFY_PAGE = "/verify"; // checks a saved receipt, offline too
// The ballot log's checkpoints and tiles, and the keys that check them, as last fetched: /verify
// checks against them offline. Not versioned: a new worker keeps them (tiles never change).
export const LOG_CACHE = `${CACHE_PREFIX}log`;
const LOG_PATH = /^\/api\/v1\/polls\/[A-Za-z0-9_-]{1,64}\/log\/(checkpoint|tile\/[0-9a-z./]+)$/;

export function isLogResource(url) {
  const { origin, pathname } = new URL(url);
  return origin === self.location.origin && (pathname === "/api/v1/keys" || LOG_PATH.test(pathname));
}

// The network's answer when there is one (and a copy kept); the copy only when there is none.
export async function networkThenCache(request) {
  const cache = await caches.open(LOG_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request.url, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request.url);
    if (cached) return cached;
    throw error;
  }
}

const precached = new Set(
  [...PRECACHE, ...Object.values(BY_LANGUAGE).flat()].map((url) => new URL(url, self.location.href).href),
);

export function isPrecached(url) {
  return precached.has(url);
}

// Pages are kept by path: a query string or fragment does not make another page.
function pageKey(url) {
  const key = new URL(url);
  key.search = "";
  key.hash = "";
  return key.href;
}

// How many copies of each page this worker has stored: a fetch that began before the last of them
// (a language chosen since, say) must not replace it with what the page was then.
const stored = new Map();

async function storePage(cache, url, response, ifStoredCount = null) {
  const key = pageKey(url);
  if (ifStoredCount !== null && (stored.get(key) ?? 0) !== ifStoredCount) return false;
  if (response.ok && !response.redirected && response.type === "basic") {
    stored.set(key, (stored.get(key) ?? 0) + 1);
    await cache.put(key, response.clone());
    return true;
  }
  return false;
}

// CORS requests, so assets on a CDN origin are cached readable and pass Subresource Integrity.
function assetRequest(url) {
  return new Request(url, { mode: "cors", credentials: "omit" });
}

export async function precacheAssets() {
  const cache = await caches.open(ASSET_CACHE);
  await cache.addAll(PRECACHE.map(assetRequest));
}

// A language's scripts are kept once a page in it is (its Content-Language says which), so that
// the page's copy works offline: a device fetches only the languages it uses. Resolves true when
// they are all in the cache afterwards.
async function keepLanguage(response) {
  const urls = BY_LANGUAGE[response?.headers.get("content-language")] ?? [];
  const cache = await caches.open(ASSET_CACHE);
  const missing = [];
  for (const url of urls) if (!(await cache.match(url))) missing.push(url);
  if (missing.length === 0) return true;
  return cache.addAll(missing.map(assetRequest)).then(
    () => true,
    () => false,
  );
}

// A new version's pages must link the new hashed assets: fetch fresh copies of every page the
// old version kept, falling back to the old copy when the network is down.
export async function carryPagesOver() {
  const cache = await caches.open(PAGE_CACHE);
  for (const name of await caches.keys()) {
    if (!name.startsWith(`${CACHE_PREFIX}pages-`) || name === PAGE_CACHE) continue;
    const old = await caches.open(name);
    for (const request of await old.keys()) {
      const fresh = await fetch(request.url).catch(() => null);
      if (fresh && (await storePage(cache, request.url, fresh))) {
        await keepLanguage(fresh);
      } else {
        const copy = await old.match(request);
        if (copy) await cache.put(request, copy);
      }
    }
  }
}

export async function dropOldCaches() {
  for (const name of await caches.keys()) {
    const current = name === ASSET_CACHE || name === PAGE_CACHE || name === LOG_CACHE;
    if (name.startsWith(CACHE_PREFIX) && !current) await caches.delete(name);
  }
}

export async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: ASSET_CACHE });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(ASSET_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

// On a link that stays up but delivers nothing (common on weak mobile signal), a voter should not
// stare at a blank tab: past this, the offline copy is shown while the network keeps trying.
export const NAVIGATION_TIMEOUT_MS = 4_000;

// `waitUntil` keeps the worker alive to refresh the copy when the network answers after all.
export async function networkFirst(request, waitUntil) {
  const cache = await caches.open(PAGE_CACHE);
  const fromNetwork = fetch(request).then(async (response) => {
    // A 5xx is no page (a proxy's 502 for a service that is down, say): the copy here is better.
    if (response.status >= 500) return (await cache.match(pageKey(request.url))) ?? response;
    // The language's scripts after the page, which the browser is not kept waiting for.
    if (await storePage(cache, request.url, response)) waitUntil(keepLanguage(response));
    return response;
  });
  waitUntil(fromNetwork.catch(() => null));
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(resolve, NAVIGATION_TIMEOUT_MS, null);
  });
  try {
    const response = await Promise.race([fromNetwork, late]);
    if (response) return response;
    return (await cache.match(pageKey(request.url))) ?? (await fromNetwork);
  } catch (error) {
    const cached = await cache.match(pageKey(request.url));
    if (cached) return cached;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

// A voter's page (the poll, its results) that this worker has a copy of paints from the copy at
// once; the network's answer replaces the copy for the next visit. The page itself fetches what
// may have changed since the copy was made (results, the closing time: frontend/page.js), so no
// stale state is shown as current. Without a copy, network-first.
const VOTER_PAGE = /^\/polls\/[A-Za-z0-9_-]{1,64}(\/results)?$/;

export function isVoterPage(request) {
  return request.mode === "navigate" && VOTER_PAGE.test(new URL(request.url).pathname);
}

export async function staleWhileRevalidate(request, waitUntil) {
  const cache = await caches.open(PAGE_CACHE);
  const cached = await cache.match(pageKey(request.url));
  // A language chosen in the link (?lang=, the language switch) is not the copy's: ask the network.
  if (!cached || new URL(request.url).searchParams.has("lang")) return networkFirst(request, waitUntil);
  waitUntil(
    fetch(request)
      .then(async (response) => {
        if (response.status < 500 && (await storePage(cache, request.url, response))) await keepLanguage(response);
      })
      .catch(() => null),
  );
  return cached;
}

// Keeps a copy of a page the browser loaded before this worker controlled it. A page this worker
// served (`served`) already has its copy, refreshed by the fetch that served it: on a slow network
// a second fetch of the page would only compete with the voter's. Resolves true when a copy is in
// the cache afterwards, fresh or not, and its language's scripts too.
export async function cachePage(url, served = false) {
  const { origin, pathname } = new URL(url);
  if (origin !== self.location.origin || !(pathname.startsWith(POLL_PAGES) || pathname === VERIFY_PAGE)) return false;
  const cache = await caches.open(PAGE_CACHE);
  const servedCopy = served ? await cache.match(pageKey(url)) : null;
  if (servedCopy) return keepLanguage(servedCopy);
  const before = stored.get(pageKey(url)) ?? 0;
  const response = await fetch(url, { credentials: "same-origin" }).catch(() => null);
  if (response) await storePage(cache, url, response, before);
  const copy = await cache.match(pageKey(url));
  return Boolean(copy) && (await keepLanguage(copy));
}
