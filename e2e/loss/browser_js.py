"""Scripts the tests run inside the page or the service worker. They read the app's IndexedDB
(`vote`, stores `outbox` and `receipts`, see frontend/db.js) without the app's code, and await
conditions in the browser: the page's CSP forbids the eval that page.wait_for_function uses."""

# Opens the app's database only if the app made it: opening a missing one would create it empty
# at version 1, and the app's own upgrade would then never run.
_OPEN_VOTE_DB = """
  const openVoteDb = async () => {
    const names = (await indexedDB.databases()).map((info) => info.name);
    if (!names.includes("vote")) return null;
    return new Promise((resolve, reject) => {
      const request = indexedDB.open("vote");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  };
  const readAll = (db, store) => new Promise((resolve, reject) => {
    const request = db.transaction(store, "readonly").objectStore(store).getAll();
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const snapshot = async () => {
    const db = await openVoteDb();
    if (!db) return { outbox: [], receipts: [] };
    try {
      return { outbox: await readAll(db, "outbox"), receipts: await readAll(db, "receipts") };
    } finally {
      db.close();
    }
  };
"""

# () -> {outbox: [...], receipts: [...]}: every vote this browser profile holds for the origin.
STORED_VOTES = f"async () => {{ {_OPEN_VOTE_DB} return snapshot(); }}"

# ([receipts, timeoutMs]) -> the stored votes, once no vote waits to be sent (queued or sending)
# and at least `receipts` are confirmed, or when the time is up (the caller then says what is left).
SETTLED_VOTES = f"""async ([receipts, timeoutMs]) => {{
  {_OPEN_VOTE_DB}
  const deadline = Date.now() + timeoutMs;
  for (;;) {{
    const votes = await snapshot();
    const waiting = votes.outbox.filter((v) => v.status === "queued" || v.status === "sending");
    if ((waiting.length === 0 && votes.receipts.length >= receipts) || Date.now() > deadline) return votes;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }}
}}"""

# Nudges the page as the browser does when the network comes back (page.js: nudge(true)).
DISPATCH_ONLINE = "() => window.dispatchEvent(new Event('online'))"

# In a page: removes Background Sync, as in a browser that has none (Firefox, Safari).
REMOVE_BACKGROUND_SYNC = """
  delete window.SyncManager;
  if (window.ServiceWorkerRegistration) delete ServiceWorkerRegistration.prototype.sync;
"""

HAS_BACKGROUND_SYNC = "async () => 'SyncManager' in window && 'sync' in (await navigator.serviceWorker.ready)"

# In the service worker: the Background Sync tags waiting to fire.
PENDING_SYNC_TAGS = "() => self.registration.sync.getTags()"

# In the service worker: ([tag, timeoutMs]) -> the pending sync tags once `tag` is no longer
# among them, or when the time is up. A sync whose handler resolves is done with; one that
# rejects stays, and the browser fires it again later.
SYNC_TAGS_AFTER_THE_EVENT = """async ([tag, timeoutMs]) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tags = await self.registration.sync.getTags();
    if (!tags.includes(tag) || Date.now() > deadline) return tags;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}"""

# In the service worker: ([lastError, timeoutMs]) -> the outbox once a vote in it records an
# error starting with `lastError`, or when the time is up.
OUTBOX_ONCE_A_VOTE_FAILED_WITH = f"""async ([lastError, timeoutMs]) => {{
  {_OPEN_VOTE_DB}
  const deadline = Date.now() + timeoutMs;
  for (;;) {{
    const {{ outbox }} = await snapshot();
    if (outbox.some((v) => v.status === "queued" && (v.lastError ?? "").startsWith(lastError))) return outbox;
    if (Date.now() > deadline) return outbox;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }}
}}"""
