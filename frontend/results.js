// Live results: the server-rendered table, kept current by what the feed (results-feed.js) hears,
// shown by the view (results-view.js) from the state (results-state.js).

import { resultsFeed } from "./results-feed.js";
import { ResultsState } from "./results-state.js";
import { resultsView } from "./results-view.js";

export function startResults(section) {
  const state = new ResultsState(
    section.dataset.pollId,
    JSON.parse(section.dataset.results),
    Number(section.dataset.knownAt),
  );
  const view = resultsView(section, state);

  function accept(results) {
    state.live = true;
    state.connecting = false;
    if (state.isStale(results)) return;
    const changed = state.isNewer(results);
    state.results = results;
    state.knownAt = Date.now();
    if (changed) {
      view.render();
      view.announce();
    }
    view.showFreshness();
    state.save();
  }

  function wentOffline() {
    state.connecting = false;
    // The counts were current until now.
    if (state.live) state.knownAt = Date.now();
    state.live = false;
    view.showFreshness();
    state.save();
  }

  const feed = resultsFeed(state.pollId, {
    results: accept,
    opened() {
      state.live = true;
      state.connecting = false;
      state.knownAt = Date.now();
      view.showFreshness();
    },
    unchanged: () => accept(state.results),
    failed() {
      if (state.live || state.connecting) wentOffline();
    },
    offline: wentOffline,
  });

  state
    .restore()
    .then((restored) => {
      if (restored) view.render();
    })
    .catch(() => {})
    .finally(() => {
      view.showFreshness();
      feed.connect();
    });
}
