"""The zero-loss proof: votes survive lost networks, lost responses and lost services (issue 4)."""

import sys
from pathlib import Path

# tests/service_process.py is shared with the API tests; `python -m pytest` finds it from the
# repo root, a bare `pytest` would not.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
