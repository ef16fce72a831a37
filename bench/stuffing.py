"""A scripted ballot-stuffer against each eligibility mode, beside an honest voter's cost.

    python -m bench.stuffing [--duration 5]

The attacker is one process on one core, as docs/abuse.md assumes: it makes a fresh device key for
every vote, signs it (and, in a `proof-of-work` poll, finds its stamp with hashlib, the fastest
native SHA-256 Python reaches), and sends batches of 100 through POST /api/v1/votes/batch,
waiting out each 429's Retry-After as a client must. In an `invite` poll it has no invitation.
Each mode runs twice: from one address under the default per-client limit, and with the limit off,
which is what an attacker with many addresses sees. Printed per run: fake votes accepted per
minute, and the attacker's CPU seconds per accepted vote. The honest voter's cost is one stamp and
one signature, measured the same way; the page's own solve time in Chromium is in docs/abuse.md.
Writes bench/stuffing-results.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from nacl.signing import SigningKey

from app.core.protocol import b64encode, signing_bytes
from app.core.settings import Settings
from app.eligibility.stamps import solve
from app.polls.validation import DEFAULT_DIFFICULTY
from bench.ingest import ADMIN_TOKEN
from bench.servers import vote_service

RESULTS = Path(__file__).with_name("stuffing-results.json")
BATCH = 100
MODES = ("anyone", "proof-of-work", "invite")


def fake_vote(poll_id: str, option_id: str, difficulty: int | None) -> dict:
    key = SigningKey.generate()
    vote = {
        "vote_id": str(uuid.uuid4()),
        "idempotency_key": str(uuid.uuid4()),
        "poll_id": poll_id,
        "option_id": option_id,
        "created_at": time.time_ns() // 1_000_000,
    }
    signed = signing_bytes(poll_id, option_id, vote["vote_id"], vote["idempotency_key"], vote["created_at"])
    vote["public_key"] = b64encode(bytes(key.verify_key))
    vote["signature"] = b64encode(key.sign(signed).signature)
    if difficulty is not None:
        vote["stamp"] = solve(poll_id, vote["public_key"], difficulty)
    return vote


def stuff(base: str, poll: dict, seconds: float) -> dict:
    """Sends fake votes for `seconds`; returns what got through and what it cost the attacker."""
    difficulty = poll["difficulty"] if poll["eligibility"] == "proof-of-work" else None
    option_id = poll["options"][0]["id"]
    accepted = sent = limited = 0
    cpu_start, start = time.process_time(), time.monotonic()
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() - start < seconds:
            votes = []
            while len(votes) < BATCH and time.monotonic() - start < seconds:
                votes.append(fake_vote(poll["id"], option_id, difficulty))
            if not votes:
                break
            response = http.post("/api/v1/votes/batch", json={"votes": votes})
            sent += len(votes)
            if response.status_code == 429:
                limited += 1
                time.sleep(
                    min(float(response.headers.get("retry-after", "1")), max(0.0, seconds - (time.monotonic() - start)))
                )
                continue
            response.raise_for_status()
            accepted += sum(1 for item in response.json()["results"] if item["status"] == 201)
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu_start
    return {
        "mode": poll["eligibility"],
        "difficulty": poll["difficulty"],
        "seconds": round(elapsed, 2),
        "fake_votes_sent": sent,
        "fake_votes_accepted": accepted,
        "requests_refused_429": limited,
        "accepted_per_minute": round(accepted / elapsed * 60),
        "attacker_cpu_s": round(cpu, 2),
        "attacker_cpu_s_per_accepted_vote": round(cpu / accepted, 5) if accepted else None,
    }


def honest_cost(difficulty: int, samples: int = 20) -> dict:
    """CPU seconds for one honest vote (a stamp at `difficulty` and a signature), median of `samples`."""
    costs = []
    for _ in range(samples):
        started = time.process_time()
        fake_vote("honest-poll", "a", difficulty)
        costs.append(time.process_time() - started)
    costs.sort()
    return {"difficulty": difficulty, "median_cpu_s": round(costs[len(costs) // 2], 4), "samples": samples}


def create_poll(base: str, eligibility: str) -> dict:
    response = httpx.post(
        f"{base}/api/v1/polls",
        json={"question": "Stuffed?", "options": ["A", "B"], "eligibility": eligibility},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def run(duration: float) -> dict:
    runs = []
    for label, per_client in (("one address, default limit", None), ("limits off (many addresses)", "0")):
        with tempfile.TemporaryDirectory() as work:
            env = {
                "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{Path(work) / 'votes.db'}",
                "VOTE_DATA_DIR": str(Path(work) / "data"),
                "VOTE_ADMIN_TOKEN": ADMIN_TOKEN,
                "VOTE_LOG_LEVEL": "WARNING",
                **({"VOTE_RATE_LIMIT_PER_CLIENT": per_client} if per_client is not None else {}),
            }
            with vote_service(env=env, log=Path(work) / "service.log") as server:
                for mode in MODES:
                    figures = {"client": label, **stuff(server.base_url, create_poll(server.base_url, mode), duration)}
                    runs.append(figures)
                    print(
                        f"{label:30} {mode:14} {figures['accepted_per_minute']:>9,} fake votes/min accepted, "
                        f"attacker CPU {figures['attacker_cpu_s']:.1f} s "
                        f"({figures['fake_votes_accepted']:,} of {figures['fake_votes_sent']:,} accepted)",
                        flush=True,
                    )
    # A short run stays within the first minute's allowance; over a minute the limit caps it.
    cap = Settings().rate_limit_per_client * BATCH
    print(f"the default per-client limit caps one address at {cap:,} fake votes/min (batches of {BATCH})")
    honest = honest_cost(DEFAULT_DIFFICULTY)
    print(f"honest voter: one vote at {DEFAULT_DIFFICULTY} bits costs {honest['median_cpu_s']} CPU s here (median)")
    return {
        "runs": runs,
        "one_address_cap_per_minute": cap,
        "honest_voter": honest,
        "duration_s": duration,
        "note": "shared 2-core machine",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per mode and client")
    args = parser.parse_args()
    results = run(args.duration)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
