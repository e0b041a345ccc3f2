"""The benchmarks' helpers are scripts' modules (``bench/`` is on ``sys.path`` when they run)."""

import sys
from pathlib import Path

from tests.core.conftest import scripted, sqs  # noqa: F401 (fixtures for the real turn replayed)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
