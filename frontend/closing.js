// The poll's closing time in the voter's own zone and language, with the time left, counted
// down near the end; when the time comes the form closes at once, without a reload.

import { LANGUAGE, _ } from "./i18n.js";

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const MAX_TIMER_MS = HOUR_MS; // setTimeout overflows past about 24.8 days; wake at least hourly

function timeLeft(ms, words) {
  if (ms >= DAY_MS) return words.format(Math.round(ms / DAY_MS), "day");
  if (ms >= HOUR_MS) return words.format(Math.round(ms / HOUR_MS), "hour");
  if (ms >= MINUTE_MS) return words.format(Math.ceil(ms / MINUTE_MS), "minute");
  return words.format(Math.ceil(ms / SECOND_MS), "second");
}

// Near the end the line changes every second; further off, every minute is plenty.
function nextUpdateIn(ms) {
  if (ms <= 2 * MINUTE_MS) return (ms % SECOND_MS) + 1;
  return Math.min(MAX_TIMER_MS, ms - 2 * MINUTE_MS, MINUTE_MS);
}

// The sentence comes whole from the catalogue, `{when}` where the <time> element goes, so that
// each language puts the date where its grammar wants it.
function writeLine(line, sentence, when) {
  const time = line.querySelector("time") ?? document.createElement("time");
  time.textContent = when;
  const [before, after = ""] = sentence.split("{when}");
  line.replaceChildren(before, time, after);
}

// `onClose` runs once, when the poll closes while the page is open. Watching a line again (a
// closing time that changed since the page was made) ends the earlier watch.
export function watchClosing(line, onClose) {
  const watch = (line.watch = (line.watch ?? 0) + 1);
  const closesAt = Number(line.dataset.closesAt);
  if (!Number.isFinite(closesAt)) return;
  const when = new Intl.DateTimeFormat(LANGUAGE, { dateStyle: "long", timeStyle: "short" }).format(closesAt);
  const words = new Intl.RelativeTimeFormat(LANGUAGE, { numeric: "auto" });
  const wasOpen = !line.classList.contains("closing-closed");
  function update() {
    if (line.watch !== watch) return;
    const left = closesAt - Date.now();
    if (left <= 0) {
      line.classList.add("closing-closed");
      writeLine(line, _("This poll is closed: it closed on {when}."), when);
      if (wasOpen) onClose();
      return;
    }
    writeLine(line, _("Voting closes {left}, on {when}.", { left: timeLeft(left, words), when: "{when}" }), when);
    setTimeout(update, nextUpdateIn(left));
  }
  update();
}
