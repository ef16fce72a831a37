// /verify: checks a tracker code or a saved receipt file against the poll's public ballot log.
// Works offline once loaded: the service worker keeps this page, the keys, and the log's
// checkpoint and tiles it fetched last (sw/caching.js), and the checks run here.

import { _, formatNumber } from "./i18n.js";
import { LogError, NotYetInLog, checkInLog, parseTracker } from "./log-verify.js";

const verifyForm = document.getElementById("verify-form");
const trackerInput = document.getElementById("tracker");
const fileInput = document.getElementById("receipt-file");
const result = document.getElementById("verify-result");

async function wanted() {
  const file = fileInput.files?.[0];
  if (file) {
    const saved = JSON.parse(await file.text());
    return { pollId: saved.poll_id, seq: saved.seq, ballotHash: saved.ballot_hash, voteId: saved.vote_id };
  }
  return parseTracker(trackerInput.value);
}

async function check() {
  let ballot;
  try {
    ballot = await wanted();
  } catch {
    ballot = null;
  }
  if (!ballot || typeof ballot.pollId !== "string" || !Number.isSafeInteger(ballot.seq)) {
    result.textContent = _("That is not a tracker code (poll:entry:code) or a receipt file.");
    return;
  }
  result.textContent = _("Checking…");
  try {
    const { entry, size } = await checkInLog(ballot);
    result.textContent = _("In the public ballot log, entry {entry} of {size}.", {
      entry: formatNumber(entry),
      size: formatNumber(size),
    });
  } catch (error) {
    if (error instanceof NotYetInLog) result.textContent = _("Not in the public ballot log yet. Try again in a moment.");
    else if (error instanceof LogError) result.textContent = _("Could not verify it in the public ballot log: {reason}.", { reason: error.message });
    else result.textContent = _("Could not reach the public ballot log, and this device has no copy of it.");
  }
}

verifyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  check();
});
// The worker keeps this page for offline use, as the poll page's does.
async function keepOffline() {
  await navigator.serviceWorker.register("/sw.js");
  const registration = await navigator.serviceWorker.ready;
  registration.active?.postMessage({ type: "cache-page", url: location.href });
}
if ("serviceWorker" in navigator) keepOffline().catch(() => {});
