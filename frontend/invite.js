// An invitation arrives in the page's fragment (`#invite=CODE`), which no browser sends in a
// request. The page keeps it on this device for the poll, and takes it out of the address bar
// so that a shared screenshot or bookmark does not carry it on.

const STORAGE_PREFIX = "invitation:";
const FRAGMENT = /^#invite=([A-Za-z0-9_-]{16,64})$/;

export function keepInvitation(pollId) {
  const match = FRAGMENT.exec(location.hash);
  if (!match) return;
  try {
    localStorage.setItem(STORAGE_PREFIX + pollId, match[1]);
  } catch {
    return; // storage refused (private mode, full): leave the link as it is, to be opened again
  }
  history.replaceState(history.state, "", location.pathname + location.search);
}

export function invitationFor(pollId) {
  try {
    return localStorage.getItem(STORAGE_PREFIX + pollId);
  } catch {
    return null;
  }
}
