"""The voter's side of a proof-of-work stamp: solve times in Chromium, in the page's own Web
Worker (frontend/pow-worker.js), at normal speed and with 4× CPU throttling (a slow phone).

    python -m bench.stamp_solve [--samples 15] [--difficulty 16]

Prints the median and the 90th percentile of the solve times, and the hashes per second the
worker reached (nonces tried over time spent). Writes bench/stamp-solve-results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from app.polls.validation import DEFAULT_DIFFICULTY
from e2e.conftest import CHROMIUM, build_assets
from tests.service_process import ServiceProcess

RESULTS = Path(__file__).with_name("stamp-solve-results.json")

SOLVE = """async ([samples, difficulty]) => {
  const url = document.getElementById("vote-form").dataset.powWorker;
  const times = [];
  let nonces = 0;
  for (let i = 0; i < samples; i++) {
    const publicKey = crypto.randomUUID().replaceAll("-", "").padEnd(43, "x");
    const started = performance.now();
    const stamp = await new Promise((resolve, reject) => {
      const worker = new Worker(url);
      worker.onmessage = (event) => {
        if (event.data.stamp !== undefined) { worker.terminate(); resolve(event.data.stamp); }
      };
      worker.onerror = (event) => reject(new Error(event.message));
      worker.postMessage({ pollId: "bench-poll", publicKey, difficulty });
    });
    times.push(performance.now() - started);
    nonces += Number(stamp) + 1;
  }
  return { times, nonces };
}"""


def measure(samples: int, difficulty: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as work, sync_playwright() as playwright:
        dist = build_assets(Path(work) / "dist")
        with ServiceProcess(Path(work) / "service", dist_dir=dist) as service:
            poll = service.create_poll("Solve?", ("A", "B"), eligibility="proof-of-work")
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for throttle in (1, 4):
                page = browser.new_page()
                page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": throttle})
                page.goto(service.poll_url(poll))
                found = page.evaluate(SOLVE, [samples, difficulty])
                times = sorted(t / 1000 for t in found["times"])
                figures = {
                    "median_s": round(statistics.median(times), 3),
                    "p90_s": round(times[int(0.9 * (len(times) - 1))], 3),
                    "hashes_per_s": round(found["nonces"] / sum(times)),
                }
                results[f"throttle_{throttle}x"] = figures
                print(f"Chromium, {throttle}x CPU throttling, {difficulty} bits: {figures}", flush=True)
                page.close()
            browser.close()
    return {"difficulty": difficulty, "samples": samples, "note": "shared 2-core machine", **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--difficulty", type=int, default=DEFAULT_DIFFICULTY)
    args = parser.parse_args()
    results = measure(args.samples, args.difficulty)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
