"""The voter's page on a slow phone: Chromium's "Slow 3G" with 4x CPU throttling, through CDP.

    python -m bench.page_speed [--rounds 3] [--against REF]

Starts the service as `make run` does (`python -m app`, embedded SQLite, this tree's dist/) and
Debian's Chromium through Playwright at a 390×844 viewport. Each round is a new device (a fresh
browser profile) on an `anyone` poll:

1. **first visit**: the page loads with nothing cached; its first contentful paint, from the
   navigation's start (the Paint Timing API);
2. the voter waits until the page works offline (the service worker controls it and keeps its
   copy), then the service worker's own requests are throttled too (CDP on the worker's target);
3. **repeat visit**: the poll's address is opened again; its first contentful paint;
4. the voter reads for READING_S, picks the first option and taps Vote: **tap to Confirmed** is
   the time from the tap until the page says Confirmed (the receipt verified on the device).

Throttling: latency 2,000 ms, 50,000 B/s down and up (DevTools' Slow 3G preset), CPU 4x slower.
Prints the medians (and each round), and writes them under the `page_speed` key of
bench/results.json, keeping its other keys. With `--against REF` the tree of the git ref REF
(a temporary worktree, built there) is measured in the same run, rounds alternating, and both
are written with the ratio new/old. Loopback only; each step is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from playwright.sync_api import Browser, CDPSession, Page, sync_playwright

from bench.compare import build, checkout, current_commit, git
from bench.servers import Server, vote_service
from e2e.voter import CONTROLLED_BY_ACTIVE_WORKER
from tests.service_process import ROOT

CHROMIUM = "/usr/bin/chromium"
RESULTS = ROOT / "bench" / "results.json"
PHONE = {"width": 390, "height": 844}
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
CPU_SLOWDOWN = 4
READING_S = 3.0  # the voter reads the question before tapping: the page's idle time
STEP_TIMEOUT_MS = 90_000
TARGETS = {"repeat_visit_first_paint_s": 0.5}

FIRST_PAINT = """async (timeoutMs) => {
  const paint = () => performance.getEntriesByName("first-contentful-paint")[0];
  const started = performance.now();
  while (!paint()) {
    if (performance.now() - started > timeoutMs) throw new Error("no first contentful paint");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return paint().startTime;
}"""

# Taps the first option and Vote, then resolves with the ms until the status line says Confirmed.
TAP_TO_CONFIRMED = """(timeoutMs) => new Promise((resolve, reject) => {
  const status = document.getElementById("status");
  const timer = setTimeout(() => reject(new Error(`not Confirmed: ${status.textContent}`)), timeoutMs);
  const tapped = performance.now();
  new MutationObserver((_, observer) => {
    if (!status.textContent.startsWith("Confirmed")) return;
    observer.disconnect();
    clearTimeout(timer);
    resolve(performance.now() - tapped);
  }).observe(status, { childList: true, characterData: true, subtree: true });
  document.querySelector('#vote-form input[name="option"]').click();
  document.querySelector('#vote-form button[type="submit"]').click();
})"""


@dataclass
class Visit:
    first_visit_first_paint_s: float
    repeat_visit_first_paint_s: float
    tap_to_confirmed_s: float


class WorkerThrottle:
    """The network conditions on the service worker's own target: the page's CDP session does
    not reach the worker's requests (e2e/loss/lab.py's Throttle does the same for the tests)."""

    def __init__(self, browser: Browser, worker_url: str) -> None:
        self.session = browser.new_browser_cdp_session()
        self.next_id = 0
        targets = self.session.send("Target.getTargets")["targetInfos"]
        [worker] = [t for t in targets if t["type"] == "service_worker" and t["url"] == worker_url]
        self.worker = self.session.send("Target.attachToTarget", {"targetId": worker["targetId"], "flatten": False})[
            "sessionId"
        ]
        self.send("Network.enable", {})
        self.send("Network.emulateNetworkConditions", SLOW_3G)

    def send(self, method: str, params: dict) -> None:
        # Replies come back as events; the commands take effect in order, which is all this needs.
        self.next_id += 1
        message = json.dumps({"id": self.next_id, "method": method, "params": params})
        self.session.send("Target.sendMessageToTarget", {"sessionId": self.worker, "message": message})

    def detach(self) -> None:
        self.session.send("Target.detachFromTarget", {"sessionId": self.worker})
        self.session.detach()


def throttle_page(page: Page) -> CDPSession:
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions", SLOW_3G)
    session.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    return session


def first_paint_s(page: Page) -> float:
    return page.evaluate(FIRST_PAINT, STEP_TIMEOUT_MS) / 1000


def measure_device(browser: Browser, server: Server, poll_url: str) -> Visit:
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        page = context.new_page()
        throttle_page(page)
        page.goto(poll_url)
        first = first_paint_s(page)
        page.evaluate(CONTROLLED_BY_ACTIVE_WORKER, STEP_TIMEOUT_MS)
        page.get_by_text("This page works offline.").wait_for(state="visible")
        worker = WorkerThrottle(browser, f"{server.base_url}/sw.js")
        try:
            page.goto(poll_url)
            repeat = first_paint_s(page)
            page.evaluate(CONTROLLED_BY_ACTIVE_WORKER, STEP_TIMEOUT_MS)
            time.sleep(READING_S)  # a person reading, not a condition to await
            confirmed = page.evaluate(TAP_TO_CONFIRMED, STEP_TIMEOUT_MS) / 1000
        finally:
            worker.detach()
        return Visit(round(first, 3), round(repeat, 3), round(confirmed, 3))
    finally:
        context.close()


@contextmanager
def service_for(tree: Path, work: Path, name: str) -> Iterator[tuple[Server, str]]:
    """The tree's service with an `anyone` poll (the bench measures the network, not proof of work)."""
    token = secrets.token_urlsafe(24)
    data = work / name
    env = {
        "VOTE_DATA_DIR": str(data),
        "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'votes.db'}",
        "VOTE_ADMIN_TOKEN": token,
        "VOTE_DIST_DIR": str(tree / "dist"),
    }
    data.mkdir(parents=True)
    with vote_service(env=env, log=work / f"{name}.log", tree=tree) as server:
        created = httpx.post(
            f"{server.base_url}/api/v1/polls",
            json={"question": "Where shall we eat?", "options": ["Soup", "Salad", "Stew"], "eligibility": "anyone"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        created.raise_for_status()
        yield server, f"{server.base_url}/polls/{created.json()['id']}"


def medians(visits: list[Visit]) -> dict[str, float]:
    return {name: round(statistics.median(getattr(v, name) for v in visits), 3) for name in Visit.__dataclass_fields__}


def report(name: str, visits: list[Visit]) -> None:
    print(f"\n{name}")
    for field, median in medians(visits).items():
        each = ", ".join(f"{getattr(v, field):.2f}" for v in visits)
        print(f"  {field:<30}{median:>7.2f} s   (rounds: {each})")


def write(results: dict) -> None:
    """Sets the `page_speed` key of bench/results.json, keeping the others (bench/ingest.py's)."""
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["page_speed"] = results
    temporary = RESULTS.with_name(RESULTS.name + ".tmp")
    temporary.write_text(json.dumps(existing, indent=2) + "\n")
    temporary.replace(RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.page_speed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", metavar="REF", help="a git ref: measure its tree too, in the same run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="page-speed-") as scratch, ExitStack() as stack:
        work = Path(scratch)
        build(ROOT)
        trees = {"new": ROOT}
        if args.against:
            old = stack.enter_context(checkout(git("rev-parse", args.against), work / "old-tree"))
            build(old)
            trees["old"] = old
        services = {name: stack.enter_context(service_for(tree, work, name)) for name, tree in trees.items()}
        visits: dict[str, list[Visit]] = {name: [] for name in trees}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
            )
            for number in range(args.rounds):
                # Alternating, so that a machine that slows down during the run weighs on both alike.
                order = list(trees) if number % 2 == 0 else list(reversed(trees))
                for name in order:
                    server, poll_url = services[name]
                    visits[name].append(measure_device(browser, server, poll_url))
                    print(f"round {number + 1} {name}: {visits[name][-1]}", flush=True)
            browser.close()
    for name, measured in visits.items():
        report(f"{name} ({trees[name] if name == 'new' else args.against})", measured)
    results: dict = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions": {**SLOW_3G, "cpu_slowdown": CPU_SLOWDOWN, "viewport": PHONE, "reading_s": READING_S},
        "commit": current_commit(),
        "rounds": args.rounds,
        "medians": medians(visits["new"]),
        "each_round": [asdict(v) for v in visits["new"]],
        "targets": {name: {"target_s": t, "met": medians(visits["new"])[name] <= t} for name, t in TARGETS.items()},
    }
    if "old" in visits:
        old_medians = medians(visits["old"])
        results["against"] = {
            "ref": args.against,
            "commit": git("rev-parse", args.against),
            "medians": old_medians,
            "each_round": [asdict(v) for v in visits["old"]],
            "new_over_old": {k: round(v / old_medians[k], 3) for k, v in results["medians"].items()},
        }
        print("\nnew/old: " + ", ".join(f"{k} {v:.2f}" for k, v in results["against"]["new_over_old"].items()))
    write(results)
    print(f"\nwrote the page_speed key of {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
