// The results section's DOM, drawn from a ResultsState (results-state.js), which it only reads:
// counts, shares, meters and total, how fresh they are, and a polite summary for screen readers.

const ANNOUNCE_MS = 5000; // 5 s: a screen reader hears the counts at most this often
const AGE_TICK_MS = 15 * 1000; // 15 s: how often the shown age is brought up to date

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

function ageText(knownAt, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - knownAt) / 1000));
  if (seconds < 60) return "just now";
  if (seconds < 3600) return relative.format(-Math.floor(seconds / 60), "minute");
  if (seconds < 86400) return relative.format(-Math.floor(seconds / 3600), "hour");
  return relative.format(-Math.floor(seconds / 86400), "day");
}

function share(votes, total) {
  return total > 0 ? Math.round((votes / total) * 100) : 0;
}

function votesText(count) {
  return count === 1 ? "1 vote" : `${count} votes`;
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
      setText(row.querySelector("[data-votes]"), String(option.votes));
      setText(row.querySelector("[data-share]"), `${share(option.votes, results.total)}%`);
      const bar = row.querySelector("meter");
      bar.max = Math.max(1, results.total);
      bar.value = option.votes;
    }
    setText(totalLine, `${votesText(results.total)} in total.`);
  }

  function showFreshness() {
    const online = navigator.onLine !== false;
    if (state.live && online) setText(freshness, "Live: updated as votes arrive.");
    else if (state.connecting && online) setText(freshness, `Updating the results, from ${ageText(state.knownAt)}…`);
    else setText(freshness, `Offline: the last known results, from ${ageText(state.knownAt)}.`);
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
    const parts = results.options.map((o) => `${o.label} ${o.votes} (${share(o.votes, results.total)}%)`);
    setText(announcer, `Results: ${parts.join(", ")}. ${votesText(results.total)} in total.`);
  }

  setInterval(showFreshness, AGE_TICK_MS);
  return { render, showFreshness, announce };
}
