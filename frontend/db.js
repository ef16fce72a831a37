// The IndexedDB schema and a thin promise layer over it, in the manner of jakearchibald/idb.
// The page and the service worker share this one database.

export const DB_NAME = "vote";
export const DB_VERSION = 2;
export const OUTBOX = "outbox"; // votes not yet confirmed, keyed by vote id
export const RECEIPTS = "receipts"; // verified receipts, keyed by vote id
export const DEVICE_KEYS = "deviceKeys"; // one non-extractable Ed25519 key pair per poll
export const SERVER_KEYS = "serverKeys"; // receipt-signing public keys, keyed by kid
export const LAST_RESULTS = "lastResults"; // the newest results seen per poll, for offline viewing

let opening = null;

// The whole schema, one step per version, so a newer worker upgrades the stores in place
// and never strands a queued vote. Add a step; never edit an old one.
function upgrade(db, oldVersion) {
  if (oldVersion < 1) {
    db.createObjectStore(OUTBOX, { keyPath: "id" }).createIndex("pollId", "pollId");
    db.createObjectStore(RECEIPTS, { keyPath: "voteId" }).createIndex("pollId", "pollId");
    db.createObjectStore(DEVICE_KEYS, { keyPath: "pollId" });
    db.createObjectStore(SERVER_KEYS, { keyPath: "kid" });
  }
  if (oldVersion < 2) {
    db.createObjectStore(LAST_RESULTS, { keyPath: "pollId" });
  }
}

export function openDb() {
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = (event) => upgrade(request.result, event.oldVersion);
    request.onsuccess = () => {
      const db = request.result;
      // A newer worker is upgrading: close so it is not blocked; the next call reopens.
      db.onversionchange = () => {
        db.close();
        opening = null;
      };
      resolve(db);
    };
    request.onerror = () => {
      opening = null;
      reject(request.error);
    };
  });
  return opening;
}

// Transactions begun and not yet finished, so that a page going into the back/forward cache can
// end them.
const unfinished = new Set();

// WebKit freezes a page in its back/forward cache with its unfinished transactions still open,
// and then every page of this origin opened after it waits on the database forever: a poll page
// reopened at once showed none of its votes (e2e/engines/test_back_forward.py). Committing or
// closing there does not release the database; aborting does. What is aborted is what the page was
// doing as the voter left it: nothing that was stored is lost, and a vote whose storing is
// aborted was never shown as saved (the page shown again says it failed, and takes another).
// A step already on its way (an awaited open, say) would begin another as the page freezes: none
// begins until the page is shown again.
let frozen = false;

function abortOnFreeze(event) {
  if (!event.persisted) return; // a page that is unloaded ends its transactions itself
  frozen = true;
  for (const tx of unfinished) {
    try {
      tx.abort();
    } catch {
      // Finished meanwhile: nothing to abort.
    }
  }
}
// The service worker has no page to hide. Each bundle that includes this module has its own set.
if (typeof window !== "undefined") {
  window.addEventListener("pagehide", abortOnFreeze);
  window.addEventListener("pageshow", () => {
    frozen = false;
  });
}

export function promisify(request) {
  return new Promise((resolve, reject) => {
    const done = () => {
      request.removeEventListener("success", success);
      request.removeEventListener("error", failure);
    };
    const success = () => {
      done();
      resolve(request.result);
    };
    const failure = () => {
      done();
      reject(request.error);
    };
    request.addEventListener("success", success);
    request.addEventListener("error", failure);
  });
}

// Runs `work(tx)` in one transaction and resolves with its result once the transaction has
// committed, so callers never act on a write that was rolled back. `work` may await only
// requests of `tx`: any other await lets the transaction auto-commit early.
export async function transact(storeNames, mode, work) {
  const db = await openDb();
  if (frozen) throw new DOMException("The page is in the back/forward cache", "AbortError");
  const tx = db.transaction(storeNames, mode);
  unfinished.add(tx);
  const committed = new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException("Transaction aborted", "AbortError"));
  }).finally(() => unfinished.delete(tx));
  let result;
  try {
    result = await work(tx);
  } catch (error) {
    committed.catch(() => {});
    if (!tx.error) {
      try {
        tx.abort();
      } catch {
        // Already finished: nothing to roll back.
      }
    }
    throw error;
  }
  await committed;
  return result;
}

export function getOne(storeName, key) {
  return transact([storeName], "readonly", (tx) => promisify(tx.objectStore(storeName).get(key)));
}
