// Results a poll shows a device only once its vote is counted (results visibility "after-voting"):
// asked for with this device's per-poll public key in a header, never in the URL, so that no
// access log pairs the key with an address. Shown once, not live: reload for newer counts. The
// page imports this module when its vote is Confirmed: it is not on the page's critical path.

import { ngettext } from "./i18n.js";

let shown = false;

export async function showResultsAfterVote(pollId, publicKey) {
  const section = document.getElementById("results-withheld");
  if (shown || !section?.dataset.afterVoting) return;
  shown = true;
  try {
    const response = await fetch(`/api/v1/polls/${encodeURIComponent(pollId)}/results`, {
      headers: { "Vote-Public-Key": publicKey },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(String(response.status));
    const results = await response.json();
    const list = document.createElement("ul");
    for (const option of results.options) {
      const item = document.createElement("li");
      item.textContent = ngettext("{label}: {n} vote", "{label}: {n} votes", option.votes, { label: option.label });
      item.dir = "auto";
      list.append(item);
    }
    section.querySelector("p").replaceWith(list);
  } catch {
    shown = false; // offline or refused: the next Confirmed or reload tries again
  }
}
