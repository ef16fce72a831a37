"""The public ballot log: how fast an auditor checks it, and how soon a vote reaches a checkpoint.

    python -m bench.ballot_log [--entries 20000] [--duration 5] [--connections 4] [--wrk-connections 64]

1. Audit: a log of --entries signed ballots, written as publish-log writes it, checked by the
   audit (every signature, every tile, the root) on one core: entries per second.
2. Integration delay under load: the service (SQLite, one worker) takes votes from wrk as fast
   as it can for --duration seconds; meanwhile --connections clients of ours cast votes and a
   watcher reads the checkpoint every 20 ms.
   A vote's delay is from its receipt reaching the client to the first checkpoint seen that
   holds its seq; p50, p99 and max are printed. Ingest with the log on against the tree before
   is `python -m bench --against REF`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from nacl.signing import SigningKey

from app.ballot_log.audit import PollWindow, audit
from app.ballot_log.checkpoint import Checkpoint
from app.ballot_log.entries import Entry, bundle
from app.ballot_log.merkle import leaf_hash, root_of
from app.ballot_log.note import Verifier, sign
from app.ballot_log.sources import DirSource
from app.ballot_log.tiles import all_tiles, bundles_for_size
from app.core.protocol import b64encode, signing_bytes
from bench.ingest import run_wrk, sign_votes, single_vote_requests
from bench.servers import vote_service

POLL = "bench"
WATCH_INTERVAL_S = 0.02


def signed_entries(count: int) -> list[bytes]:
    now = int(time.time() * 1000)
    entries = []
    for index in range(count):
        key = SigningKey(os.urandom(32))
        vote_id, idem, option = str(uuid.uuid4()), str(uuid.uuid4()), "ab"[index % 2]
        signature = key.sign(signing_bytes(POLL, option, vote_id, idem, now)).signature
        entry = Entry(POLL, option, vote_id, idem, now, b64encode(bytes(key.verify_key)), b64encode(signature))
        entries.append(entry.encode())
    return entries


def write_log(out: Path, entries: list[bytes], key: SigningKey) -> Verifier:
    hashes = [leaf_hash(e) for e in entries]
    files = {tile.path: data for tile, data in all_tiles(hashes).items()}
    for bundle_id in bundles_for_size(len(entries)):
        first = bundle_id.index * 256
        files[bundle_id.path] = bundle(entries[first : first + bundle_id.width])
    files["checkpoint"] = sign(Checkpoint(f"bench.example/polls/{POLL}", len(entries), root_of(hashes)).text(),
                               "bench.example/polls", key).encode()  # fmt: skip
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    return Verifier.of("bench.example/polls", bytes(key.verify_key))


def audit_rate(count: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="vote-bench-log-"))
    key = SigningKey(os.urandom(32))
    verifier = write_log(work, signed_entries(count), key)
    window = PollWindow(POLL, frozenset({"a", "b"}), created_at=0, closes_at=None)
    started = time.process_time()
    report = audit(DirSource(work), [verifier], window)
    elapsed = time.process_time() - started  # CPU time of this process: one core
    assert report.checkpoint.size == count
    return count / elapsed


async def integration_delays(base: str, poll: dict, duration: float, connections: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        options = [o["id"] for o in poll["options"]]
        receipts: list[tuple[int, float]] = []  # (seq, when the client had the receipt)
        seen: list[tuple[int, float]] = []  # (checkpoint size, when first seen)
        stop = time.monotonic() + duration

        async def voter() -> None:
            while time.monotonic() < stop:
                key = SigningKey(os.urandom(32))
                vote_id, idem, now = str(uuid.uuid4()), str(uuid.uuid4()), int(time.time() * 1000)
                option = options[len(receipts) % 2]
                signature = key.sign(signing_bytes(poll["id"], option, vote_id, idem, now)).signature
                body = {
                    "vote_id": vote_id, "idempotency_key": idem, "poll_id": poll["id"], "option_id": option,
                    "created_at": now, "public_key": b64encode(bytes(key.verify_key)),
                    "signature": b64encode(signature),
                }  # fmt: skip
                response = await http.post(
                    f"/api/v1/polls/{poll['id']}/votes", json=body, headers={"Idempotency-Key": idem}
                )
                if response.status_code == 201:
                    payload = json.loads(base64.urlsafe_b64decode(response.json()["payload"] + "=="))
                    receipts.append((payload["seq"], time.monotonic()))

        async def watcher() -> None:
            last = 0
            # Until the voters are done and the log holds every receipted vote (or 10 s more pass).
            while time.monotonic() < stop + 10 and (
                time.monotonic() < stop or not receipts or last < max(s for s, _ in receipts)
            ):
                text = (await http.get(f"/api/v1/polls/{poll['id']}/log/checkpoint")).text
                size = int(text.split("\n")[1])
                if size > last:
                    seen.append((size, time.monotonic()))
                    last = size
                await asyncio.sleep(WATCH_INTERVAL_S)

        await asyncio.gather(watcher(), *(voter() for _ in range(connections)))
    delays = []
    for seq, received in receipts:
        first = next((when for size, when in seen if size >= seq), None)
        if first is None:
            raise SystemExit(f"vote {seq} never reached a checkpoint")
        delays.append(max(0.0, first - received))
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4, help="clients that time their own votes")
    parser.add_argument("--wrk-connections", type=int, default=64, help="wrk's connections: the load")
    args = parser.parse_args()

    print(f"audit of {args.entries:,} entries on one core: measuring…", flush=True)
    rate = audit_rate(args.entries)
    print(f"  audit: {rate:,.0f} entries/s (target ≥ 10,000)", flush=True)

    work = Path(tempfile.mkdtemp(prefix="vote-bench-integration-"))
    token = "bench-admin-token-0123456789"
    os.environ["VOTE_ADMIN_TOKEN"] = token
    env = {
        "VOTE_DATA_DIR": str(work / "data"),
        "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'votes.db'}",
        "VOTE_ADMIN_TOKEN": token,
        "VOTE_LOG_LEVEL": "WARNING",
    }
    print(f"integration delay under load, {args.duration:g} s: measuring…", flush=True)
    with vote_service(env=env, log=work / "service.log") as server:
        poll = httpx.post(
            f"{server.base_url}/api/v1/polls",
            json={"question": "Bench?", "options": ["A", "B"]},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        # The load: wrk sends signed votes to the same poll as fast as the service takes them,
        # while a few clients of ours time their own votes into the log.
        flood = single_vote_requests(
            work / "flood.tsv", sign_votes(poll["id"], [o["id"] for o in poll["options"]], 40_000)
        )
        with ThreadPoolExecutor(1) as pool:
            load = pool.submit(run_wrk, "load", server.base_url, flood, int(args.duration), args.wrk_connections, 1)
            delays = asyncio.run(integration_delays(server.base_url, poll, args.duration, args.connections))
            figure = load.result()
    print(f"  load: {figure.votes_per_s:,.0f} votes/s from wrk, {args.wrk_connections} connections", flush=True)
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"  {len(delays):,} votes: receipt → in a checkpoint p50 {statistics.median(ordered) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms (target: within 1 s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
