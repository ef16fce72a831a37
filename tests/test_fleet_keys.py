"""Keys for a fleet: nodes on one database, each with its own data dir, share their signing keys
through the database, sealed under the key-encryption key every node is given (docs/deploy.md)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.key_encryption import KeyEncryptionError
from app.core.keys import rotate as rotate_file_key
from app.core.settings import Settings
from app.eligibility import secret
from app.storage import sealed_keys
from app.storage.db import Database
from app.storage.migrate import upgrade
from tests.helpers import Voter, admin_headers, create_poll, send_vote, verify_receipt
from tests.lifespan import serve

REFRESH_S = 0.05  # a rotated key signs after 3 refreshes: 0.15 s here, 15 s by default
ROOT = Path(__file__).resolve().parent.parent


def write_kek(path: Path) -> Path:
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    return path


@pytest.fixture
def kek_file(tmp_path: Path) -> Path:
    return write_kek(tmp_path / "kek")


def node(settings: Settings, tmp_path: Path, name: str, kek_file: Path) -> Settings:
    """One node of a fleet: the shared database and key-encryption key, a data dir of its own."""
    return dataclasses.replace(
        settings, data_dir=tmp_path / name, key_encryption_key_file=kek_file, key_refresh_seconds=REFRESH_S
    )


async def keys_of(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/api/v1/keys")).json()


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    """Awaits a condition that another node's refresh makes true."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(REFRESH_S / 2)


async def test_nodes_on_one_database_publish_the_same_keys(settings, tmp_path, kek_file):
    async with (
        serve(node(settings, tmp_path, "a", kek_file)) as a,
        serve(node(settings, tmp_path, "b", kek_file)) as b,
    ):
        assert await keys_of(a) == await keys_of(b)
    assert not (tmp_path / "a" / "receipt-keys").exists()  # no key file to copy, or to steal


async def test_receipt_signed_by_one_node_verifies_with_another_nodes_keys(settings, tmp_path, kek_file):
    async with (
        serve(node(settings, tmp_path, "a", kek_file)) as a,
        serve(node(settings, tmp_path, "b", kek_file)) as b,
    ):
        poll = await create_poll(a, question="Ship it?", options=["Yes", "No"])
        vote = Voter().vote(poll["id"], poll["options"][0]["id"])
        receipt = (await send_vote(a, vote)).json()
        verify_receipt(receipt, (await keys_of(b))["keys"], vote)


async def test_rotation_on_one_node_reaches_another_without_restart(settings, tmp_path, kek_file):
    settings_a = node(settings, tmp_path, "a", kek_file)
    async with serve(settings_a) as a, serve(node(settings, tmp_path, "b", kek_file)) as b:
        before = await keys_of(b)
        db = Database(settings_a.database_url)
        try:
            new_key = await sealed_keys.rotate(settings_a, db, sealed_keys.RECEIPT)
            new_log_key = await sealed_keys.rotate(settings_a, db, sealed_keys.LOG)
        finally:
            await db.dispose()

        async def both_sign_with_the_new_keys() -> bool:
            listed = [await keys_of(a), await keys_of(b)]
            return all(
                [k["kid"] for k in keys["keys"] if k["active"]] == [new_key.kid]
                and keys["log"]["vkey"] != before["log"]["vkey"]
                for keys in listed
            )

        await until(both_sign_with_the_new_keys)
        assert await keys_of(a) == await keys_of(b)
        assert {k["kid"] for k in before["keys"]} < {k["kid"] for k in (await keys_of(b))["keys"]}
        poll = await create_poll(b, question="Ship it?", options=["Yes", "No"])
        vote = Voter().vote(poll["id"], poll["options"][0]["id"])
        receipt = (await send_vote(b, vote)).json()
        assert receipt["kid"] == new_key.kid
        verify_receipt(receipt, (await keys_of(a))["keys"], vote)
    assert new_log_key.active_from_ms > 0


async def test_an_invitation_issued_on_one_node_admits_on_another(settings, tmp_path, kek_file):
    async with (
        serve(node(settings, tmp_path, "a", kek_file)) as a,
        serve(node(settings, tmp_path, "b", kek_file)) as b,
    ):
        poll = await create_poll(a, question="Members only?", options=["Yes", "No"], eligibility="invite")
        issued = await a.post(f"/api/v1/polls/{poll['id']}/invitations", json={"count": 1}, headers=admin_headers())
        [invitation] = issued.json()["invitations"]
        vote = Voter().vote(poll["id"], poll["options"][0]["id"], invitation=invitation["code"])
        assert (await send_vote(b, vote)).status_code == 201  # b hashes the code with a's key


async def test_rotated_key_is_published_before_it_signs(settings, tmp_path, kek_file):
    slow = dataclasses.replace(node(settings, tmp_path, "a", kek_file), key_refresh_seconds=60)
    async with serve(slow) as a:
        db = Database(slow.database_url)
        try:
            new_key = await sealed_keys.rotate(slow, db, sealed_keys.RECEIPT)
            store = sealed_keys.SealedKeyStore.of(slow, db)
            assert store is not None
            ring = a.app.state.receipt_keys  # type: ignore[attr-defined]
            ring.replace(await store.ring_keys(sealed_keys.RECEIPT))  # what a refresh does
        finally:
            await db.dispose()
        keys = (await keys_of(a))["keys"]
    assert new_key.kid in [k["kid"] for k in keys]
    assert [k["kid"] for k in keys if k["active"]] != [new_key.kid]  # not before every node shows it


async def test_data_dir_keys_are_imported_when_a_node_joins_a_fleet(settings, tmp_path, kek_file):
    async with serve(settings) as single:
        before = await keys_of(single)
        poll = await create_poll(single, question="Ship it?", options=["Yes", "No"])
        vote = Voter().vote(poll["id"], poll["options"][0]["id"])
        receipt = (await send_vote(single, vote)).json()
    eligibility_key = secret.load_or_create(settings.data_dir)
    fleet_node = dataclasses.replace(settings, key_encryption_key_file=kek_file)
    async with serve(fleet_node) as a, serve(node(settings, tmp_path, "b", kek_file)) as b:
        assert await keys_of(a) == before == await keys_of(b)
        verify_receipt(receipt, (await keys_of(b))["keys"], vote)
        assert b.app.state.eligibility_key == eligibility_key  # type: ignore[attr-defined]


async def test_a_different_key_encryption_key_stops_the_start(settings, tmp_path, kek_file):
    async with serve(node(settings, tmp_path, "a", kek_file)):
        pass
    other = node(settings, tmp_path, "b", write_kek(tmp_path / "other-kek"))
    db = Database(other.database_url)
    try:
        with pytest.raises(KeyEncryptionError, match="does not open the keys stored in the database"):
            await sealed_keys.load_rings(other, db)
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot read"), ("", "is empty"), ("c2hvcnQ=", "must hold 32 random bytes")],
    ids=["missing", "empty", "short"],
)
def test_an_unusable_key_encryption_key_stops_the_start_with_one_line(tmp_path, content, problem):
    kek = tmp_path / "kek"
    if content is not None:
        kek.write_text(content)
    env = {
        **os.environ,
        "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}",
        "VOTE_DATA_DIR": str(tmp_path / "data"),
        "VOTE_KEY_ENCRYPTION_KEY_FILE": str(kek),
        "PORT": "1",  # never reached: the start stops before serving
    }
    done = subprocess.run(
        [sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: VOTE_KEY_ENCRYPTION_KEY_FILE: ")
    assert problem in line


async def test_file_keys_stay_the_default(settings):
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        receipt_ring, _ = await sealed_keys.load_rings(settings, db)
        added = rotate_file_key(settings.data_dir)
        again, _ = await sealed_keys.load_rings(settings, db)
    finally:
        await db.dispose()
    assert (settings.data_dir / "receipt-keys").is_dir()
    assert [k.kid for k in again.keys] == [receipt_ring.active.kid, added.kid]


@pytest.mark.parametrize("command", ["rotate", "rotate-log"])
async def test_litestar_keys_rotate_reaches_a_running_node(settings, tmp_path, kek_file, command):
    async with serve(node(settings, tmp_path, "a", kek_file)) as a:
        env = {
            **os.environ,
            "VOTE_DATABASE_URL": settings.database_url,
            "VOTE_DATA_DIR": str(tmp_path / "operator"),
            "VOTE_KEY_ENCRYPTION_KEY_FILE": str(kek_file),
            "VOTE_KEY_REFRESH_SECONDS": str(REFRESH_S),
            "VOTE_PUBLIC_URL": settings.base_url,
        }
        litestar = str(Path(sys.executable).with_name("litestar"))
        done = await asyncio.to_thread(
            subprocess.run,
            [litestar, "keys", command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)

        async def a_signs_with_it() -> bool:
            keys = await keys_of(a)
            if command == "rotate-log":
                return keys["log"]["vkey"] == printed["vkey"]
            return [k["kid"] for k in keys["keys"] if k["active"]] == [printed["kid"]]

        await until(a_signs_with_it)
