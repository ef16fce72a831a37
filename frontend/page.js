// The poll page: casts a vote into the outbox at once, then shows where each vote stands, and
// the live results (results.js, imported once the page is drawn). The results page (no form) runs
// only the results and the worker's start.
// Delivery belongs to the service worker; the page only nudges it.

import { SYNC_TAG, deliverAll, storeServerKeys } from "./delivery.js";
import { cannotVoteBecause } from "./capabilities.js";
import { watchClosing } from "./closing.js";
import { deviceKeyFor } from "./device-key.js";
import { invitationFor, keepInvitation } from "./invite.js";
import { announceChange, onChange } from "./notify.js";
import { CONFIRMED, FAILED, QUEUED, allUnconfirmed, pollVotes, queueVote } from "./outbox.js";
import { signVote } from "./protocol.js";
import { finishStamps } from "./stamp.js";
import { _, formatShare, ngettext } from "./i18n.js";

const MIN_WAKE_MS = 1000; // 1 s: never spin on a vote that is due right now
const MAX_WAKE_MS = 30 * 1000; // 30 s: while a page is open, look at the outbox at least this often

const form = document.getElementById("vote-form");
const pollId = form?.dataset.pollId;
const statusLine = document.getElementById("status");
const notice = document.getElementById("notice");
const voteList = document.getElementById("votes");
const noVotes = document.getElementById("no-votes");
const pending = document.getElementById("pending");
const connection = document.getElementById("connection");
const offlineReady = document.getElementById("offline-ready");
const ownVote = document.getElementById("own-vote");
const sendsWhileOpen = document.getElementById("sends-while-open");

function optionLabel(optionId) {
  for (const input of form.querySelectorAll('input[name="option"]')) {
    if (input.value === optionId) return input.labels[0]?.textContent.trim() ?? optionId;
  }
  return optionId;
}

// Vote id → what the public ballot log says of it (frontend/log-verify.js, loaded once needed).
const inLog = new Map();

function describe(vote) {
  const error = advice ? advice.reasonWords(vote.lastError) : vote.lastError;
  if (vote.status === CONFIRMED) return _("Confirmed · receipt #{seq}", { seq: vote.seq });
  if (vote.status === FAILED) {
    return _("Failed: {reason}. {advice}", { reason: error, advice: advice?.failedAdvice(vote.lastError) ?? "" }).trim();
  }
  if (vote.status === QUEUED && vote.stampBits && !vote.stamp) return _("Queued, saved on this device. Preparing it to send…");
  if (vote.status === QUEUED && vote.lastError) return _("Queued, saved on this device. Last try: {reason}.", { reason: error });
  if (vote.status === QUEUED) return _("Queued, saved on this device.");
  return _("Transmitting…");
}

// advice.js: words for failures, loaded after the page is drawn (off the critical path). Until it
// is here, a failure is shown without its advice, and drawn again once it arrives.
let advice = null;
const adviceLoaded = form?.dataset.adviceModule
  ? import(form.dataset.adviceModule).then((module) => {
      advice = module;
      scheduleRender();
      return module;
    })
  : Promise.reject(new Error("no advice module"));
adviceLoaded.catch(() => {});

// Only text that changed is written, so a screen reader hears each new state once.
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

async function render() {
  const { outbox, receipts } = await pollVotes(pollId);
  const votes = [...outbox, ...receipts.map((r) => ({ ...r, id: r.voteId, status: CONFIRMED }))];
  votes.sort((a, b) => b.createdAt - a.createdAt);
  voteList.replaceChildren(
    ...votes.map((vote) => {
      const item = document.createElement("li");
      item.className = `vote vote-${vote.status}`;
      const choice = document.createElement("span");
      choice.className = "choice";
      choice.textContent = optionLabel(vote.optionId);
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = describe(vote);
      item.append(choice, " — ", state);
      const log = inLog.get(vote.id);
      if (log) {
        const save = document.createElement("a");
        save.href = log.file;
        save.download = `receipt-${pollId}-${vote.seq}.json`;
        save.textContent = _("Save receipt");
        const tracker = _("tracker {code}", { code: log.tracker });
        item.append(` · ${log.words} · ${tracker} · `, save);
      }
      return item;
    }),
  );
  noVotes.hidden = votes.length > 0;
  showOwnVote(votes.find((vote) => vote.status !== FAILED));
  for (const receipt of receipts) checkInLog(receipt);
  if (votes.length > 0) setText(statusLine, describe(votes[0]));
  const waiting = await allUnconfirmed();
  setText(pending, waitingText(waiting.length));
  scheduleWake(waiting);
}

// This device's vote in this poll, in words, and a form that no longer invites a second one. A
// failed vote counts for nothing: the form stays open for another try.
function showOwnVote(vote) {
  hasVoted = Boolean(vote);
  updateForm();
  ownVote.hidden = !vote;
  if (!vote) return;
  const label = optionLabel(vote.optionId);
  setText(
    ownVote,
    vote.status === CONFIRMED
      ? _("Your vote for {label} is counted.", { label })
      : _("Your vote for {label} is saved on this device. It is counted once it says Confirmed.", { label }),
  );
  ownVote.classList.toggle("own-vote-counted", vote.status === CONFIRMED);
  if (vote.status === CONFIRMED) showResultsAfterVote();
  for (const input of form.querySelectorAll('input[name="option"]')) input.checked = input.value === vote.optionId;
}

// Results a poll shows only to a device whose vote is counted, with a module of their own.
function showResultsAfterVote() {
  if (!document.getElementById("results-withheld")?.dataset.afterVoting) return;
  Promise.all([import(form.dataset.afterVoteModule), deviceKeyFor(pollId)])
    .then(([module, key]) => module.showResultsAfterVote(pollId, key.publicKey))
    .catch(() => {}); // offline: the next Confirmed or reload tries again
}

// After Confirmed, off the critical path: the log check is a module of its own, fetched then.
function checkInLog(receipt) {
  if (inLog.has(receipt.voteId) || !form.dataset.logModule) return;
  inLog.set(receipt.voteId, null);
  import(form.dataset.logModule)
    .then((log) =>
      log.watchInLog(receipt, (words) => {
        inLog.set(receipt.voteId, words);
        scheduleRender();
      }),
    )
    .catch(() => inLog.delete(receipt.voteId));
}

function waitingText(count) {
  if (count === 0) return _("No votes waiting to be sent.");
  return ngettext("{n} vote waiting to be sent.", "{n} votes waiting to be sent.", count);
}

// Renders one at a time; changes that arrive meanwhile fold into one more render.
let rendering = null;
let renderAgain = false;
function scheduleRender() {
  if (rendering) {
    renderAgain = true;
    return;
  }
  rendering = render()
    .catch(showError)
    .finally(() => {
      rendering = null;
      if (renderAgain) {
        renderAgain = false;
        scheduleRender();
      }
    });
}

let wakeTimer = 0;
function scheduleWake(waiting) {
  clearTimeout(wakeTimer);
  if (waiting.length === 0) return;
  const next = Math.min(...waiting.map((v) => v.nextAttemptAt));
  const delay = Math.min(MAX_WAKE_MS, Math.max(MIN_WAKE_MS, next - Date.now()));
  // Rendering again re-arms the timer: a wake that finds nothing due yet (a Retry-After longer
  // than MAX_WAKE_MS) must not be the last.
  wakeTimer = setTimeout(() => {
    nudge();
    scheduleRender();
  }, delay);
}

// Asks the worker to send; a page that no worker controls yet (first visit, or no service
// worker support) sends by itself, under the same lock.
function nudge(reconnected = false) {
  const worker = navigator.serviceWorker?.controller;
  if (worker) worker.postMessage({ type: "flush", reconnected });
  else deliverAll({ reconnected }).catch(showError);
}

function requestSync() {
  // Background Sync is Chromium-only; elsewhere the other nudges deliver alone.
  navigator.serviceWorker?.ready.then((registration) => registration.sync?.register(SYNC_TAG)).catch(() => {});
}

// Why this browser cannot vote, once known: no later error hides it.
let cannotVote = null;

function showError(error) {
  adviceLoaded
    .then((words) => words.deviceTrouble(error))
    .catch(() => _("Something went wrong on this device. Reload the page."))
    .then((words) => setText(notice, cannotVote ?? words));
}

async function castVote(optionId) {
  const key = await deviceKeyFor(pollId);
  const vote = {
    id: crypto.randomUUID(),
    idempotencyKey: crypto.randomUUID(),
    pollId,
    optionId,
    createdAt: Date.now(),
    publicKey: key.publicKey,
    signature: "",
    // Outside the signature (docs/protocol.md, Eligibility): the stamp is found after queueing.
    stampBits: form.dataset.eligibility === "proof-of-work" ? Number(form.dataset.difficulty) : 0,
    stamp: null,
    invitation: invitationFor(pollId),
    status: QUEUED,
    retries: 0,
    nextAttemptAt: 0,
    lastError: null,
  };
  vote.signature = await signVote(vote, key.privateKey);
  // Stored before any network use: from here on the vote survives a crash or a closed tab.
  if (!(await queueVote(vote))) {
    setText(notice, _("This device has already voted in this poll."));
    return;
  }
  setText(notice, "");
  announceChange();
  navigator.storage?.persist?.().catch(() => {});
  requestSync();
  prepareStamps();
  nudge();
}

// Finds the stamps of this poll's queued votes off the page's thread, then sends them.
function prepareStamps() {
  finishStamps(pollId, form.dataset.powWorker, showProgress)
    .then(() => nudge())
    .catch(showError);
}

// Clears only its own words: the notice may say something else (a browser that cannot vote).
let showingProgress = false;
function showProgress(percent) {
  if (percent === null) {
    if (showingProgress) setText(notice, "");
    showingProgress = false;
    return;
  }
  setText(
    notice,
    _("Preparing your vote on this device: about {share} of the usual work done.", { share: formatShare(percent, 100) }),
  );
  showingProgress = true;
}

let casting = false;
function onSubmit(event) {
  event.preventDefault();
  const choice = form.querySelector('input[name="option"]:checked');
  if (!choice) {
    setText(notice, _("Choose an option, then press Vote."));
    return;
  }
  if (casting) return;
  casting = true;
  castVote(choice.value)
    .catch(showError)
    .finally(() => {
      casting = false;
    });
}

function showConnection() {
  if (connection) connection.hidden = navigator.onLine;
}

// The service notes this device's key while the poll is open, by its own clock: a vote cast
// offline before the close may then still be delivered after it (docs/protocol.md, Late delivery).
async function registerDevice() {
  const { publicKey } = await deviceKeyFor(pollId);
  await fetch(`/api/v1/polls/${encodeURIComponent(pollId)}/devices`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ public_key: publicKey }),
  });
}

function registerQuietly() {
  // Best effort: a page that never registers can still vote before the close.
  if (form && navigator.onLine !== false) registerDevice().catch(() => {});
}

// A page the worker served is in its copies already (it refreshes them itself): no second fetch.
// Read at load: a worker that claims the page later did not serve it.
const servedByWorker = Boolean(navigator.serviceWorker?.controller);

async function startWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data?.type === "page-cached" && offlineReady) offlineReady.hidden = !event.data.ok;
  });
  await navigator.serviceWorker.register("/sw.js");
  const registration = await navigator.serviceWorker.ready;
  registration.active?.postMessage({ type: "cache-page", url: location.href, served: servedByWorker });
}

window.addEventListener("online", () => {
  showConnection();
  registerQuietly();
  if (form) nudge(true);
});
window.addEventListener("offline", showConnection);
showConnection();
// Without Background Sync (Firefox, Safari) no event wakes the worker for a queued vote once the
// page is closed: the voter is told before choosing.
// The words come with advice.js, off the critical path.
if (sendsWhileOpen && !("SyncManager" in window)) {
  adviceLoaded
    .then((words) => {
      setText(sendsWhileOpen, words.sendsWhileOpen());
      sendsWhileOpen.hidden = false;
    })
    .catch(() => {});
}
if (form) {
  checkBrowser();
  keepInvitation(pollId);
  // A link opened in a tab already on the poll changes only the fragment: no new page load.
  window.addEventListener("hashchange", () => keepInvitation(pollId));
  prepareStamps();
  form.addEventListener("submit", onSubmit);
  onChange(scheduleRender);
  scheduleRender();
}
// The form is open only while this browser can vote, the poll is open, and this device has no
// vote in it that counts or may still count.
let pollClosed = Boolean(form?.querySelector("fieldset:disabled"));
let hasVoted = false;
function updateForm() {
  const closed = pollClosed || cannotVote !== null || hasVoted;
  for (const control of form.querySelectorAll("fieldset, button")) control.disabled = closed;
}

function closeForm() {
  pollClosed = true;
  updateForm();
  setText(notice, _("This poll has just closed: no more votes can be cast."));
}

// Before the voter chooses: a browser that cannot sign or keep a vote is told so at once.
async function checkBrowser() {
  const why = await cannotVoteBecause();
  if (why) {
    // The form closes at once; the full words follow with advice.js.
    cannotVote = _("This browser cannot vote here. Open this page in another browser.");
    updateForm();
    setText(notice, cannotVote);
    cannotVote = await adviceLoaded.then((words) => words.cannotVoteWords(why), () => cannotVote);
    setText(notice, cannotVote);
  }
}

let closingLine = document.getElementById("closing");
if (closingLine) watchClosing(closingLine, form ? closeForm : () => {});

// A page made before this visit began is the service worker's copy, painted at once: the poll may
// have been closed early since. (A device clock ahead of the service's makes every page look like
// a copy, which costs one small request.) The results feed refreshes the counts; this device's
// own votes come from the device.
async function refreshPollState() {
  if (!(Number(form.dataset.renderedAt) < performance.timeOrigin) || navigator.onLine === false) return;
  const response = await fetch(`/api/v1/polls/${encodeURIComponent(pollId)}`, { cache: "no-store" });
  const closesAt = response.ok ? (await response.json()).closes_at : null;
  if (closesAt === null || String(closesAt) === closingLine?.dataset.closesAt) return;
  if (!closingLine) {
    closingLine = document.createElement("p");
    closingLine.id = "closing";
    closingLine.className = "closing";
    form.before(closingLine);
  }
  closingLine.dataset.closesAt = String(closesAt);
  watchClosing(closingLine, closeForm);
}

// While the page is idle: the keys that check a receipt (and the log), so that a vote is
// Confirmed one round trip after it is sent; and, on a copy, the poll's current closing time.
(window.requestIdleCallback ?? setTimeout)(() => {
  if (navigator.onLine !== false) storeServerKeys().catch(() => {});
  if (form) refreshPollState().catch(() => {});
});
// The live results are below the vote, drawn by the server already: the script that keeps them
// live is a module of its own, imported once the page is drawn (off the critical path).
const resultsSection = document.getElementById("results");
if (resultsSection?.dataset.module) {
  import(resultsSection.dataset.module).then((results) => results.startResults(resultsSection)).catch(() => {});
}
startWorker().catch(() => {
  // No worker (private mode, old browser): the page still queues and sends by itself.
});
registerQuietly();
if (form) nudge();
