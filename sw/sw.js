// The service worker's event wiring. What to cache is in caching.js; how votes are sent is in
// frontend/delivery.js, shared with the page. build.py bundles all of it into one classic script.

import { SYNC_TAG, deliverAll } from "../frontend/delivery.js";
import { allUnconfirmed } from "../frontend/outbox.js";
import {
  cacheFirst,
  cachePage,
  carryPagesOver,
  dropOldCaches,
  isLogResource,
  isPrecached,
  isVoterPage,
  networkFirst,
  networkThenCache,
  POLL_PAGES,
  precacheAssets,
  staleWhileRevalidate,
  VERIFY_PAGE,
} from "./caching.js";

const WEBMANIFEST_PATH = "/manifest.webmanifest";

// Poll pages and the web app manifests get offline copies; other navigations (the API's
// documentation, say) go to the network untouched, so the cache holds only what voters use.
function isKeptPage(request) {
  const { origin, pathname } = new URL(request.url);
  if (origin !== self.location.origin) return false;
  if (pathname === WEBMANIFEST_PATH) return true;
  if (pathname === VERIFY_PAGE) return request.mode === "navigate";
  return pathname.startsWith(POLL_PAGES) && (request.mode === "navigate" || pathname.endsWith(WEBMANIFEST_PATH));
}

function deliverQuietly(options) {
  return deliverAll(options).catch((error) => console.error("vote delivery failed", error));
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      await precacheAssets();
      await carryPagesOver();
      // Take over at once: the outbox lives in IndexedDB, so no queued vote is stranded.
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      await dropOldCaches();
      await self.clients.claim();
      await deliverQuietly();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  if (isPrecached(request.url)) {
    event.respondWith(cacheFirst(request));
  } else if (isVoterPage(request)) {
    event.respondWith(staleWhileRevalidate(request, (promise) => event.waitUntil(promise)));
  } else if (isKeptPage(request)) {
    event.respondWith(networkFirst(request, (promise) => event.waitUntil(promise)));
  } else if (isLogResource(request.url)) {
    event.respondWith(networkThenCache(request));
  }
});

self.addEventListener("message", (event) => {
  const { type, url, reconnected, served } = event.data ?? {};
  if (type === "flush") {
    event.waitUntil(deliverQuietly({ reconnected: Boolean(reconnected) }));
  } else if (type === "cache-page") {
    event.waitUntil(cachePage(url, served).then((ok) => event.source?.postMessage({ type: "page-cached", ok })));
  }
});

// Background Sync (Chromium): a rejected promise asks the browser to fire the event again later,
// which it should while a vote still waits, for a network or for a busy service: with no page
// open, nothing else wakes this worker.
self.addEventListener("sync", (event) => {
  if (event.tag !== SYNC_TAG) return;
  event.waitUntil(
    (async () => {
      await deliverQuietly();
      const waiting = await allUnconfirmed();
      if (!event.lastChance && waiting.length > 0) {
        throw new Error("votes still waiting to be sent");
      }
    })(),
  );
});

// The worker's start is a trigger too: it also puts back votes a crash left in `sending`.
deliverQuietly();
