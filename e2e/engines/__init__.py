"""The zero-loss scenarios in every engine: Chromium, Firefox ESR and WebKitGTK (issue 16)."""

import sys
from pathlib import Path

# As in e2e/loss: tests/service_process.py is found from the repo root under a bare `pytest` too.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
