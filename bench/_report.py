"""What every benchmark prints: figures as JSON lines on stdout, progress as text on stderr."""

from __future__ import annotations

import json
import sys


def emit(metric: str, value: float, unit: str) -> None:
    """One figure: ``{"metric", "value", "unit"}`` on stdout (value rounded to 4 decimals)."""
    print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit}), flush=True)


def log(text: str) -> None:
    """Readable progress on stderr."""
    print(text, file=sys.stderr, flush=True)
