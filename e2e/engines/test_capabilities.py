"""What the page relies on, engine by engine: the README's support matrix, checked.

A vote needs a service worker, IndexedDB, Web Locks and Ed25519 in Web Crypto; Background Sync
only helps (Chromium has it; elsewhere the page's own nudges deliver, see test_zero_loss.py). What
its absence changes for a voter (a queued vote leaves only while the page is open), the page says.
"""

from __future__ import annotations

import pytest

from .lab import EngineLab

pytestmark = [pytest.mark.e2e, pytest.mark.engines]

FEATURES = """async () => {
  const ed25519 = async () => {
    try {
      const keys = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      const data = new TextEncoder().encode("vote/v1");
      const signature = await crypto.subtle.sign({ name: "Ed25519" }, keys.privateKey, data);
      return await crypto.subtle.verify({ name: "Ed25519" }, keys.publicKey, signature, data);
    } catch {
      return false;
    }
  };
  const registration = await navigator.serviceWorker.ready;
  return {
    serviceWorker: Boolean(navigator.serviceWorker.controller),
    indexedDB: "indexedDB" in self,
    webLocks: "locks" in navigator,
    ed25519: await ed25519(),
    backgroundSync: "SyncManager" in self && "sync" in registration,
  };
}"""
NEEDED = {"serviceWorker": True, "indexedDB": True, "webLocks": True, "ed25519": True}
BACKGROUND_SYNC = {"chromium": True, "firefox": False, "webkit": False}
SENDS_WHILE_OPEN = (
    "This browser sends a vote saved on this device only while this page is open: "
    "keep it open, or come back to it, until your vote says Confirmed."
)


def test_engine_has_what_a_vote_needs_and_background_sync_only_in_chromium(engine_lab: EngineLab) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()

    features = device.window.run(FEATURES)

    assert {name: features[name] for name in NEEDED} == NEEDED
    assert features["backgroundSync"] is BACKGROUND_SYNC[engine_lab.engine]


def test_page_says_before_the_vote_whether_a_saved_vote_leaves_only_while_it_is_open(engine_lab: EngineLab) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()  # the page's script has run

    assert device.window.visible(SENDS_WHILE_OPEN) is not BACKGROUND_SYNC[engine_lab.engine]
