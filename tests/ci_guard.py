"""In CI, the tests of the real local models cannot be skipped (issue 17: CI proves a fresh machine).

A pytest plugin, loaded by ``tests/conftest.py``. With ``CI`` set to ``true`` (or ``1``/``yes``,
as GitHub Actions, GitLab and most CI services set it):

- a ``local_models`` test that skips, whatever the cause (``pytest.skip``, ``skipif``, a fixture
  that skips, ``importorskip``), is reported as failed, with the skip's reason;
- ``-m "not local_models"`` is refused before anything runs.

Off CI nothing changes: a developer may still skip or deselect them.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

MARKER = "local_models"


def in_ci() -> bool:
    """True when the ``CI`` environment variable says so (``true``, ``1`` or ``yes``, any case)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a marker expression that leaves the local-model tests out, in CI."""
    expression = config.getoption("markexpr", "") or ""
    if in_ci() and re.search(rf"\bnot\s+{MARKER}\b", expression):
        raise pytest.UsageError(f"-m {expression!r} deselects the {MARKER} tests, which CI must run (CI=true)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Turn the skip of a ``local_models`` test into a failure, in CI (an expected failure is left alone)."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci() and item.get_closest_marker(MARKER) is not None):
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"a {MARKER} test may not skip in CI (CI=true); it skipped: {reason}"
