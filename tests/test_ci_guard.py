"""``tests/ci_guard.py``: in CI the local-model tests fail rather than skip; off CI they may skip."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = textwrap.dedent("""
    import pytest

    pytestmark = pytest.mark.local_models

    def test_skips_in_the_body():
        pytest.skip("llama_cpp is not installed")

    @pytest.mark.skipif(True, reason="no model file")
    def test_skipped_by_a_marker():
        pass

    @pytest.fixture
    def model():
        pytest.importorskip("a_module_that_does_not_exist")

    def test_skipped_by_a_fixture(model):
        pass

    @pytest.mark.xfail(reason="known")
    def test_an_expected_failure_stays_one():
        assert False

    def test_runs():
        pass
""")
OTHER = "import pytest\n\ndef test_an_unmarked_test_may_skip():\n    pytest.skip('not a local model test')\n"


def run_pytest(tmp_path: Path, ci: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "test_other.py").write_text(OTHER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.ci_guard",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfsx",
            "-o",
            "markers=local_models: real models",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            *args,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_in_ci_every_skip_of_a_local_model_test_is_a_failure(tmp_path, ci):
    result = run_pytest(tmp_path, ci)
    assert result.returncode == 1, result.stdout
    # a skip in the test body fails it; a skip while setting it up (skipif, a fixture) is an error
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 2 errors" in result.stdout
    assert "may not skip in CI (CI=true); it skipped: llama_cpp is not installed" in result.stdout
    assert "it skipped: no model file" in result.stdout
    assert "a_module_that_does_not_exist" in result.stdout


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_off_ci_local_model_tests_may_skip(tmp_path, ci):
    result = run_pytest(tmp_path, ci)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 4 skipped, 1 xfailed" in result.stdout


def test_in_ci_deselecting_the_local_model_tests_is_refused(tmp_path):
    result = run_pytest(tmp_path, "true", "-m", "not local_models")
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error
    assert "deselects the local_models tests, which CI must run" in result.stderr
