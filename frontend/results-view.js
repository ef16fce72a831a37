// The results section's DOM, drawn from a ResultsState (results-state.js), which it only reads:
// counts, shares, meters and total, how fresh they are, and a polite summary for screen readers.

import { LANGUAGE, _, formatNumber, formatShare, ngettext } from "./i18n.js";

const ANNOUNCE_MS = 5000; // 5 s: a screen reader hears the counts at most this often
const AGE_TICK_MS = 15 * 1000; // 15 s: how often the shown age is brought up to date

const relative = new Intl.RelativeTimeFormat(LANGUAGE, { numeric: "auto" });

function totalText(count) {
  return ngettext("{n} vote in total.", "{n} votes in total.", count);
}

function ageText(knownAt, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - knownAt) / 1000));
  if (seconds < 60) return _("just now");
  if (seconds < 3600) return relative.format(-Math.floor(seconds / 60), "minute");
  if (seconds < 86400) return relative.format(-Math.floor(seconds / 3600), "hour");
  return relative.format(-Math.floor(seconds / 86400), "day");
}


export function resultsView(section, state) {
  const rows = new Map([...section.querySelectorAll("tr[data-option-id]")].map((row) => [row.dataset.optionId, row]));
  const totalLine = section.querySelector("[data-results-total]");
  const freshness = section.querySelector("[data-results-freshness]");
  const announcer = section.querySelector("[data-results-announce]");
  let lastAnnounced = 0;
  let announceTimer = 0;

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function render() {
    const { results } = state;
    for (const option of results.options) {
      const row = rows.get(option.id);
      if (!row) continue;
      setText(row.querySelector("[data-votes]"), formatNumber(option.votes));
      setText(row.querySelector("[data-share]"), formatShare(option.votes, results.total));
      const bar = row.querySelector("meter");
      bar.max = Math.max(1, results.total);
      bar.value = option.votes;
    }
    setText(totalLine, totalText(results.total));
  }

  function showFreshness() {
    const online = navigator.onLine !== false;
    if (state.live && online) setText(freshness, _("Live: updated as votes arrive."));
    else if (state.connecting && online) {
      setText(freshness, _("Updating the results, from {age}…", { age: ageText(state.knownAt) }));
    } else setText(freshness, _("Offline: the last known results, from {age}.", { age: ageText(state.knownAt) }));
  }

  // A polite summary, at most every ANNOUNCE_MS, so a busy poll does not talk over the page.
  // A delayed one says the counts of when it is made, never a stale set.
  function announce() {
    clearTimeout(announceTimer);
    const wait = lastAnnounced + ANNOUNCE_MS - Date.now();
    if (wait > 0) {
      announceTimer = setTimeout(announce, wait);
      return;
    }
    lastAnnounced = Date.now();
    const { results } = state;
    const parts = results.options.map((o) =>
      _("{label} {votes} ({share})", {
        label: o.label,
        votes: formatNumber(o.votes),
        share: formatShare(o.votes, results.total),
      }),
    );
    const list = new Intl.ListFormat(LANGUAGE, { style: "short", type: "unit" }).format(parts);
    setText(announcer, _("Results: {list}. {total}", { list, total: totalText(results.total) }));
  }

  setInterval(showFreshness, AGE_TICK_MS);
  return { render, showFreshness, announce };
}
