// The organiser's pages (new poll, poll created, manage). Loaded only there: no part of the
// voter's page or its 14 KB budget. Every page works without it; it adds the organiser's time
// zone, adding and removing options, copy buttons, and the manage actions that need the key.

import { _, formatNumber, ngettext } from "./i18n.js";

const TOKEN_KEY = "vote-admin-token"; // the admin token, kept in this browser, never in a URL

function say(element, text) {
  if (element) element.textContent = text;
}

function enableCopyButtons() {
  for (const button of document.querySelectorAll("button.copy")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        say(button, _("Copied"));
      } catch {
        say(button, _("Copy failed: select the link"));
      }
    });
  }
}

function renumber(list) {
  list.querySelectorAll("li").forEach((item, index) => {
    say(item.querySelector("label"), _("Option {number}", { number: formatNumber(index + 1) }));
    const remove = item.querySelector("button");
    if (remove) remove.setAttribute("aria-label", _("Remove option {number}", { number: formatNumber(index + 1) }));
  });
}

function addRemoveButton(list, item) {
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.textContent = _("Remove");
  remove.addEventListener("click", () => {
    if (list.children.length <= 2) return;
    const previous = item.previousElementSibling || item.nextElementSibling;
    item.remove();
    renumber(list);
    previous?.querySelector("input")?.focus();
  });
  item.append(remove);
}

function enhanceOptions(form) {
  const list = form.querySelector("#option-list");
  const max = Number(form.dataset.maxOptions);
  for (const item of list.querySelectorAll("li")) addRemoveButton(list, item);
  const add = document.createElement("button");
  add.type = "button";
  add.id = "add-option";
  add.textContent = _("Add an option");
  add.addEventListener("click", () => {
    if (list.children.length >= max) return say(add, _("At most {max} options", { max: formatNumber(max) }));
    const item = document.createElement("li");
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.name = "option";
    input.maxLength = 200;
    input.dir = "auto";
    input.id = `option-new-${Date.now()}`;
    label.htmlFor = input.id;
    item.append(label, input);
    addRemoveButton(list, item);
    list.append(item);
    renumber(list);
    input.focus();
  });
  list.after(add);
  renumber(list);
}

function enhanceNewPoll(form) {
  enhanceOptions(form);
  // The script turns the local time into an instant itself: the offset field is for pages without it.
  document.getElementById("tz-offset-field").hidden = true;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) {
    say(document.getElementById("closes-at-zone"), _("In your time zone, {zone}. Leave it empty to close the poll yourself.", { zone }));
  }
  const token = form.querySelector("#admin-token");
  if (token && !token.value) token.value = localStorage.getItem(TOKEN_KEY) || "";
  form.addEventListener("submit", () => {
    const local = form.elements.closes_at.value;
    // A date-time without an offset is read in the browser's own zone.
    form.elements.closes_at_ms.value = local ? String(new Date(local).getTime()) : "";
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token.value);
    } catch {
      // Storage full or refused: the organiser types the token next time.
    }
  });
}

function manageRequest(pollId, key, path, init = {}) {
  const headers = { Authorization: `Manage ${key}`, ...(init.headers || {}) };
  return fetch(`/api/v1/polls/${encodeURIComponent(pollId)}${path}`, { ...init, headers });
}

function failure(response) {
  if (response.status === 401 || response.status === 403) return _("This manage link does not manage this poll.");
  return _("The service could not do this now. Check your connection and try again.");
}

function showResults(results) {
  const rows = document.getElementById("manage-results-rows");
  rows.replaceChildren(
    ...results.options.map((option) => {
      const row = document.createElement("tr");
      const label = document.createElement("th");
      label.scope = "row";
      label.textContent = option.label;
      label.dir = "auto";
      const votes = document.createElement("td");
      votes.textContent = formatNumber(option.votes);
      row.append(label, votes);
      return row;
    }),
  );
  const table = document.getElementById("manage-results-table");
  if (table) table.hidden = false;
  say(
    document.getElementById("manage-results-total"),
    ngettext("{n} vote in total (voters may not see them yet).", "{n} votes in total (voters may not see them yet).", results.total),
  );
}

function enhanceManage(root) {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  const print = document.getElementById("print-poster");
  print.hidden = false;
  print.addEventListener("click", () => window.print());
  if (!key) {
    document.getElementById("manage-key-missing").hidden = false;
    return;
  }
  const pollId = root.dataset.pollId;
  const status = document.getElementById("manage-status");
  document.getElementById("controls").hidden = false;

  // Counts the voters do not see yet are asked for with the key; visible ones came with the page.
  if (document.getElementById("manage-results-table")) {
    manageRequest(pollId, key, "/results")
      .then((response) => (response.ok ? response.json().then(showResults) : say(status, failure(response))))
      .catch(() => say(status, failure({ status: 0 })));
  }

  document.getElementById("visibility-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const choice = event.target.elements.results_visibility.value;
    try {
      const response = await manageRequest(pollId, key, "/results-visibility", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ results_visibility: choice }),
      });
      say(status, response.ok ? _("Saved: results are now shown as you chose.") : failure(response));
    } catch {
      say(status, failure({ status: 0 }));
    }
  });

  const closeNow = document.getElementById("close-now");
  const confirm = document.getElementById("close-confirm");
  closeNow.addEventListener("click", () => {
    confirm.hidden = false;
    document.getElementById("close-yes").focus();
  });
  document.getElementById("close-no").addEventListener("click", () => {
    confirm.hidden = true;
    closeNow.focus();
  });
  document.getElementById("close-yes").addEventListener("click", async () => {
    try {
      const response = await manageRequest(pollId, key, "/close", { method: "POST" });
      if (!response.ok) return say(status, failure(response));
      confirm.hidden = true;
      closeNow.disabled = true;
      say(document.getElementById("closed-state"), _("This poll is closed."));
      say(status, _("The poll is closed. Voters see this when they open or reload the poll."));
      status.focus?.();
    } catch {
      say(status, failure({ status: 0 }));
    }
  });

  // The invitations form posts the key in its body: a form navigation cannot send a header.
  const invitationsForm = document.getElementById("invitations-form");
  if (invitationsForm) invitationsForm.elements.manage_token.value = key;

  document.getElementById("csv-export").addEventListener("click", async () => {
    try {
      const response = await manageRequest(pollId, key, "/results.csv");
      if (!response.ok) return say(status, failure(response));
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = `${pollId}-results.csv`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      say(status, _("The results were downloaded as a CSV file."));
    } catch {
      say(status, failure({ status: 0 }));
    }
  });
}

const printSheet = document.getElementById("print-sheet");
if (printSheet) {
  printSheet.hidden = false;
  printSheet.addEventListener("click", () => window.print());
}
const newPoll = document.getElementById("new-poll");
if (newPoll) enhanceNewPoll(newPoll);
const manage = document.getElementById("manage");
if (manage) enhanceManage(manage);
enableCopyButtons();
