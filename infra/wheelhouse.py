"""Build llama-cpp-python once, portably, into a project-local wheelhouse keyed by what the build depends on.

``python infra/wheelhouse.py`` (run by ``make install``, standard library only: it runs before the
project is installed) prints the path of a wheel of the ``llama-cpp-python`` version pinned in
``requirements.lock``, building it first if the wheelhouse has none for this key.

Why not let ``pip install`` build it like any other package:

* llama-cpp-python is published as source only; its build compiles llama.cpp with
  ``GGML_NATIVE`` on by default, i.e. for the build machine's CPU. On a machine whose CPU
  advertises Intel AMX but whose VM refuses it, that build dies with SIGSEGV on its first
  decode. We build with :data:`CMAKE_ARGS` (no native tuning, no AVX-512: an AVX2 baseline on
  x86_64, generic on aarch64), so the wheel runs on any machine of the same architecture.
* pip's wheel cache is keyed by package version alone, not by ``CMAKE_ARGS`` or the CPU: a wheel
  built natively on another day would be reused silently. We build with the cache off
  (``--no-cache-dir``) and key our own wheelhouse by version, source hash, build flags,
  interpreter and architecture (:func:`wheel_key`), so changing any of them builds anew.
* The sdist is checked against the lock's hash (``--require-hashes``) like every other package.

Building takes about 5 minutes on 2 cores, once per key; the wheelhouse is ``.wheelhouse/``
(``WHEELHOUSE`` overrides), ignored by git.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "llama-cpp-python"
#: Portable llama.cpp: no -march=native, no AVX-512 (and so no AMX, which needs the native path).
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX512=OFF"


def locked_requirement(lock: Path, package: str = PACKAGE) -> str:
    """The lock's entry for ``package``: its ``name==version`` line with its ``--hash`` lines.

    Args:
        lock: A ``uv pip compile --generate-hashes`` output (continuation lines end with ``\\``).
        package: Distribution name as written in the lock.

    Raises:
        LookupError: the lock does not pin ``package``.
    """
    lines = lock.read_text().splitlines()
    for start, line in enumerate(lines):
        if line.startswith(f"{package}=="):
            entry = [line]
            while entry[-1].endswith("\\"):
                entry.append(lines[start + len(entry)])
            return "\n".join(entry) + "\n"
    raise LookupError(f"{lock} does not pin {package}")


def wheel_key(requirement: str, cmake_args: str = CMAKE_ARGS) -> str:
    """A directory name that changes whenever the wheel would differ.

    Returns:
        ``<version>-<12 hex digits>``: the digest covers the locked entry (version and sdist
        hashes), the build flags, the interpreter's cache tag (``cpython-311``) and the machine
        architecture (``x86_64``).
    """
    version = requirement.split("==", 1)[1].split()[0]
    material = "\n".join([requirement, cmake_args, sys.implementation.cache_tag or "", platform.machine()])
    return f"{version}-{hashlib.sha256(material.encode()).hexdigest()[:12]}"


def build(requirement: str, destination: Path, cmake_args: str = CMAKE_ARGS) -> Path:
    """Build the wheel for ``requirement`` into ``destination`` (no pip cache, hash-checked sdist).

    Raises:
        subprocess.CalledProcessError: the compiler or pip failed (its output is on stderr).
    """
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pinned:
        pinned.write(requirement)
        pinned.flush()
        env = {
            **os.environ,
            "CMAKE_ARGS": cmake_args,
            "PIP_NO_CACHE_DIR": "1",
            "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1),
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-cache-dir",
                "--no-binary",
                PACKAGE,
                "--require-hashes",
                "-r",
                pinned.name,
                "-w",
                str(destination),
            ],
            check=True,
            env=env,
        )
    return _the_wheel(destination)


def _the_wheel(directory: Path) -> Path:
    wheels = sorted(directory.glob("llama_cpp_python-*.whl"))
    if len(wheels) != 1:
        raise FileNotFoundError(f"expected one llama_cpp_python wheel in {directory}, found {len(wheels)}")
    return wheels[0]


def ensure_wheel(lock: Path = ROOT / "requirements.lock", wheelhouse: Path | None = None) -> Path:
    """The wheel for the locked version and this machine's key, built if missing (progress on stderr)."""
    wheelhouse = wheelhouse or Path(os.environ.get("WHEELHOUSE", ROOT / ".wheelhouse"))
    requirement = locked_requirement(lock)
    directory = wheelhouse / f"{PACKAGE}-{wheel_key(requirement)}"
    try:
        return _the_wheel(directory)
    except FileNotFoundError:
        pass
    print(
        f">> Compiling {PACKAGE} {requirement.split()[0].split('==')[1]} portably ({CMAKE_ARGS}):\n"
        f">> about 5 minutes on 2 cores, once; the wheel is kept in {directory}",
        file=sys.stderr,
    )
    started = time.monotonic()
    building = directory.with_name(directory.name + ".partial")  # a killed build never looks finished
    shutil.rmtree(building, ignore_errors=True)
    wheel = build(requirement, building)
    building.rename(directory)
    print(f">> {PACKAGE} built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return directory / wheel.name


if __name__ == "__main__":
    print(ensure_wheel())
