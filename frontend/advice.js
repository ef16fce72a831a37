// What a voter can do about a failure: long words for rare moments, kept off the page's critical
// path. The page imports this module (one per language, built by build.py) once it has drawn
// itself; the service worker precaches it with the other assets, so it is there offline too.

import { N_, _ } from "./i18n.js";
import { NETWORK_ERROR, RECEIPT_REJECTED } from "./reasons.js";

// The final answers of docs/protocol.md, by their problem type, in words.
const REASON_WORDS = {
  "already-voted": N_("already voted"),
  "poll-closed": N_("poll closed"),
  "poll-not-found": N_("poll not found"),
  "not-found": N_("poll not found"),
  "unknown-option": N_("unknown option"),
  "invalid-signature": N_("signature rejected"),
  "clock-in-future": N_("this device's clock is ahead"),
  "dated-before-poll": N_("this device's clock is behind"),
  "idempotency-key-reused": N_("vote changed after sending"),
  "payload-too-large": N_("vote too large"),
  "not-eligible": N_("this poll takes votes by invitation only, and this device has none"),
  "invitation-used": N_("this invitation was already used on another device"),
  "invitation-unknown": N_("this invitation is not valid for this poll"),
  "proof-of-work-required": N_("the service refused this device's proof of work"),
};

// What a voter can do about each final refusal.
const TRY_AGAIN = N_("This vote was not counted. Reload the page and vote again; if it fails again, try another browser.");
const FAILED_ADVICE = {
  "poll-closed": N_("The poll closed before this vote reached it, so it was not counted."),
  "already-voted": N_("This device had already voted in this poll: that earlier vote is the one counted."),
  "poll-not-found": N_("This poll no longer exists, so the vote was not counted."),
  "not-found": N_("This poll no longer exists, so the vote was not counted."),
  "unknown-option": N_("That choice is no longer in the poll. Reload the page to see the choices, then vote again."),
  "clock-in-future": N_("Set this device's date and time right, then reload the page and vote again."),
  "dated-before-poll": N_("Set this device's date and time right, then reload the page and vote again."),
  "not-eligible": N_(
    "Open the invitation link you were sent on this device, then vote again.",
  ),
  "invitation-used": N_(
    "Each invitation admits one device. Vote on the device that first opened it, or ask the organiser for another.",
  ),
  "invitation-unknown": N_(
    "Check the invitation link you were sent, or ask the organiser for another.",
  ),
};

// Why this browser cannot vote (capabilities.js names the reason).
const CANNOT_VOTE = {
  "no-signing": N_(
    "This browser cannot sign a vote, so it cannot vote here. Update it, or open this page in a recent Chrome, Edge, Firefox or Safari.",
  ),
  "no-storage": N_(
    "This browser does not let this page keep your vote on this device (private browsing can do this), so it cannot vote here. Open this page in a normal window or in another browser.",
  ),
};

// A reason delivery.js recorded, in words: a final refusal by its problem type; "server busy
// (503)" and the like by their words and their figure; NETWORK_ERROR and other keys looked up.
export function reasonWords(reason) {
  if (Object.hasOwn(REASON_WORDS, reason)) return REASON_WORDS[reason];
  if (reason === NETWORK_ERROR) return _(NETWORK_ERROR);
  if (reason?.startsWith(RECEIPT_REJECTED)) return _(RECEIPT_REJECTED); // the details are for developers
  const busy = /^server busy \((\d+)\)$/.exec(reason ?? "");
  if (busy) return _("server busy ({status})", { status: busy[1] });
  const refused = /^refused \((\d+)\)$/.exec(reason ?? "");
  if (refused) return _("refused ({status})", { status: refused[1] });
  return _(reason ?? "");
}

// Without Background Sync (Firefox, Safari), said before the voter chooses.
export function sendsWhileOpen() {
  return _(
    "This browser sends a vote saved on this device only while this page is open: keep it open, or come back to it, until your vote says Confirmed.",
  );
}

export function failedAdvice(reason) {
  return Object.hasOwn(FAILED_ADVICE, reason) ? FAILED_ADVICE[reason] : TRY_AGAIN;
}

export function cannotVoteWords(why) {
  return _(CANNOT_VOTE[why]);
}

// A failure on this device, in words: exception text never reaches the voter.
export function deviceTrouble(error) {
  if (error?.name === "QuotaExceededError") {
    return _("Your vote could not be saved: this device is out of storage space. Free some space, then vote again.");
  }
  return _(
    "Something went wrong on this device, and your vote may not have been saved. Reload the page, then vote again if your vote is not listed below.",
  );
}
