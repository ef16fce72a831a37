"""The auditor's recount, on a log written by publish-log, and what each kind of tampering makes
it say. A log nobody altered passes; every alteration fails with its own reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from app.ballot_log.audit import AuditFailure, PollWindow, audit
from app.ballot_log.audit_source import resolve
from app.ballot_log.checkpoint import Checkpoint
from app.ballot_log.entries import Entry, bundle, unbundle
from app.ballot_log.merkle import leaf_hash, root_of
from app.ballot_log.note import sign
from app.ballot_log.publish import publish
from app.ballot_log.tiles import all_tiles
from app.polls.store import load_poll
from tests.helpers import Voter
from tests.service_process import ROOT, ServiceProcess

LITESTAR = str(Path(sys.executable).with_name("litestar"))


@pytest.fixture
async def published(client, poll, tmp_path) -> Path:
    """A poll with 5 votes (3 yes, 2 no), its log written to a directory."""
    votes = [Voter().vote(poll["id"], option) for option in ("yes", "no", "yes", "yes", "no")]
    response = await client.post("/api/v1/votes/batch", json={"votes": votes})
    assert [r["status"] for r in response.json()["results"]] == [201] * 5
    integrator = client.app.state.log_integrator
    await integrator.run_once()
    out = tmp_path / "mirror"
    db = client.app.state.db
    await publish(db, poll["id"], out, integrator.signer, await load_poll(db, poll["id"]))
    return out


def run_audit(where: Path, since: bytes | None = None):
    target = resolve(str(where), [])
    return audit(target.log, target.verifiers, target.poll, since)


def canonical(vote: dict) -> bytes:
    return Entry(**{name: vote[name] for name in Entry.__struct_fields__}).encode()


def entries_of(out: Path) -> list[bytes]:
    return unbundle((out / "tile/entries/000.p/5").read_bytes(), 5)


def rewrite(out: Path, entries: list[bytes], *, sign_with: SigningKey | None = None, name: str = "") -> None:
    """Replaces the log's entries (and, to look consistent, its tiles), keeping or re-signing the checkpoint."""
    for path in (out / "tile").rglob("*"):
        if path.is_file():
            path.unlink()
    hashes = [leaf_hash(e) for e in entries]
    files = {t.path: data for t, data in all_tiles(hashes).items()}
    files[f"tile/entries/000.p/{len(entries)}"] = bundle(entries)
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    if sign_with is not None:
        origin = (out / "checkpoint").read_text().split("\n")[0]
        (out / "checkpoint").write_text(sign(Checkpoint(origin, len(entries), root_of(hashes)).text(), name, sign_with))


async def test_an_untouched_log_recounts_to_the_results(published, poll):
    report = run_audit(published)
    assert report.checkpoint.size == 5
    assert dict(report.tally) == {"yes": 3, "no": 2}


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("flip a byte in a tile", "tile/0/000.p/5 does not match the entries"),
        ("flip a byte in a bundle", "entry 2"),
        ("drop an entry", "holds 4 entries, not 5"),
        ("swap two entries", "do not hash to the checkpoint's root"),
        ("add an entry never receipted", "holds 6 entries, not 5"),
    ],
)
async def test_tampering_fails_the_audit_with_its_reason(published, poll, tamper, reason):
    entries = entries_of(published)
    if tamper == "flip a byte in a tile":
        tile = published / "tile/0/000.p/5"
        data = bytearray(tile.read_bytes())
        data[40] ^= 1
        tile.write_bytes(bytes(data))
    elif tamper == "flip a byte in a bundle":
        bundle_path = published / "tile/entries/000.p/5"
        data = bytearray(bundle_path.read_bytes())
        at = data.index(b'"option_id":"', 2 * 2 + sum(len(e) for e in entries[:2])) + len('"option_id":"')
        data[at] ^= 0x20  # "yes" → "Yes": still a valid option id, no longer the signed vote
        bundle_path.write_bytes(bytes(data))
    elif tamper == "drop an entry":
        (published / "tile/entries/000.p/5").write_bytes(bundle(entries[:4]))
    elif tamper == "swap two entries":
        rewrite(published, [entries[1], entries[0], *entries[2:]])
        (published / "tile/entries/000.p/5").write_bytes(bundle([entries[1], entries[0], *entries[2:]]))
    elif tamper == "add an entry never receipted":
        extra = canonical(Voter().vote(poll["id"], "yes"))
        (published / "tile/entries/000.p/5").write_bytes(bundle([*entries, extra]))
    with pytest.raises(AuditFailure, match=reason):
        run_audit(published)


async def test_a_rewritten_log_signed_by_an_unknown_key_fails(published, poll):
    entries = entries_of(published)
    name = json.loads((published / "log-keys.json").read_text())["vkey"].split("+")[0]
    rewrite(published, entries[:4], sign_with=SigningKey.generate(), name=name)
    (published / "checkpoint").replace(published / "checkpoint")
    with pytest.raises(AuditFailure, match="not signed by a known log key"):
        run_audit(published)


async def test_a_forked_log_fails_against_a_saved_checkpoint(client, poll, published, tmp_path):
    saved = (published / "checkpoint").read_bytes()
    run_audit(published, since=saved)  # the same checkpoint: consistent with itself
    # The log's own key signs another history of the same size (a compromised or lying service).
    signer = client.app.state.log_integrator.signer
    entries = entries_of(published)
    swapped = [entries[1], entries[0], *entries[2:]]
    rewrite(published, swapped)
    hashes = [leaf_hash(e) for e in swapped]
    origin = saved.decode().split("\n")[0]
    (published / "checkpoint").write_bytes(signer.sign(Checkpoint(origin, 5, root_of(hashes))))
    run_audit(published)  # on its own it is a valid log...
    with pytest.raises(AuditFailure, match="two checkpoints of size 5 with different roots"):
        run_audit(published, since=saved)  # ...that contradicts the one saved before
    # A longer log that does not start with the saved one.
    longer = [*swapped, canonical(Voter().vote(poll["id"], "no"))]
    rewrite(published, longer)
    (published / "checkpoint").write_bytes(signer.sign(Checkpoint(origin, 6, root_of([leaf_hash(e) for e in longer]))))
    with pytest.raises(AuditFailure, match="does not extend the saved one of 5"):
        run_audit(published, since=saved)


async def test_votes_outside_the_window_and_second_votes_fail(published, poll):
    target = resolve(str(published), [])
    late = PollWindow(target.poll.poll_id, target.poll.option_ids, target.poll.created_at, closes_at=0)
    with pytest.raises(AuditFailure, match="entry 0 is dated after the poll closed"):
        audit(target.log, target.verifiers, late)
    entries = entries_of(published)
    voter = Voter()
    twice = [canonical(voter.vote(poll["id"], o)) for o in ("yes", "no")]
    signer_key = SigningKey.generate()
    rewrite(published, [*entries, *twice], sign_with=signer_key, name="test/polls")
    pinned = [f"test/polls+{_key_id_hex('test/polls', signer_key)}+{_vkey_material(signer_key)}"]
    target = resolve(str(published), pinned)
    with pytest.raises(AuditFailure, match="entry 6: a second vote by the same device key"):
        audit(target.log, target.verifiers, target.poll)


def _key_id_hex(name: str, key: SigningKey) -> str:
    from app.ballot_log.note import key_id

    return f"{key_id(name, bytes(key.verify_key)):08x}"


def _vkey_material(key: SigningKey) -> str:
    import base64

    return base64.b64encode(b"\x01" + bytes(key.verify_key)).decode()


def test_the_commands_publish_and_audit_a_running_service(tmp_path):
    """`litestar polls publish-log` and `litestar polls audit`, against the service and its mirror."""
    with ServiceProcess(tmp_path / "svc") as service:
        poll = service.create_poll(options=("Red", "Blue"))
        option_ids = [o["id"] for o in poll["options"]]
        with service.client() as http:
            votes = [Voter().vote(poll["id"], option_ids[i % 2]) for i in range(7)]
            assert http.post("/api/v1/votes/batch", json={"votes": votes}).status_code == 200
        env = {**service.env}
        log_url = f"{service.base_url}/api/v1/polls/{poll['id']}/log/"
        _wait_for_entries(service, poll["id"], 7)
        saved = tmp_path / "seen.checkpoint"
        result = _cli(env, "polls", "audit", log_url, "--save", str(saved))
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["results_match"] is True
        assert sum(summary["tally"].values()) == summary["entries"]
        mirror = tmp_path / "mirror" / "deep"
        result = _cli(env, "polls", "publish-log", poll["id"], str(mirror))
        assert result.returncode == 0, result.stderr
        assert (mirror / "checkpoint").is_file()
        result = _cli(env, "polls", "audit", str(mirror), "--since", str(saved))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["tally"] == summary["tally"]
        shutil.copy(mirror / "tile/entries/000.p/7", tmp_path / "kept")
        (mirror / "tile/entries/000.p/7").write_bytes((tmp_path / "kept").read_bytes()[:-1] + b"X")
        result = _cli(env, "polls", "audit", str(mirror))
        assert result.returncode != 0
        assert "audit failed: entry 6" in result.stderr


def _wait_for_entries(service: ServiceProcess, poll_id: str, size: int) -> None:
    deadline = time.monotonic() + 10
    with service.client() as http:
        while int(http.get(f"/api/v1/polls/{poll_id}/log/checkpoint").text.split("\n")[1]) < size:
            assert time.monotonic() < deadline, "the votes never reached the log"
            time.sleep(0.05)  # another process: there is no event to await across it


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LITESTAR, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
