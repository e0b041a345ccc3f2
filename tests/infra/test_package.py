"""The Lambda package holds what the handlers import, and nothing local-only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.package import LOCAL_ONLY, ROOT, build

#: Modules that need the ``local`` extra by design (the embedded default's models).
LOCAL_MODULES = (
    "core.model_providers.local",
    "core.model_providers.local_text",
    "core.model_providers.local_embedding",
)


@pytest.fixture(scope="module")
def package(tmp_path_factory, database_url) -> Path:
    # Built for this interpreter's platform (not Lambda's arm64) so it can be imported here.
    env = {
        "LAMBDA_ARCH": os.uname().machine,
        "LAMBDA_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}",
        "LAMBDA_BUNDLE_BOTO3": "1",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return build(tmp_path_factory.mktemp("lambda"))
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def _modules() -> list[str]:
    found = []
    for top in ("core", "functions"):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.append(module.removesuffix(".__init__"))
    return [m for m in found if m not in LOCAL_MODULES]


def test_every_module_imports_from_the_package_alone(package, database_url):
    """An isolated interpreter (no site-packages) with only the package on its path imports
    every module, handlers included (their init phase runs against the test database)."""
    script = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint('ok')"
    env = {
        **os.environ,
        "PYTHONPATH": str(package),
        "DATABASE_URL": database_url,
        "MODEL_PLUGINS": "core.model_providers.scripted",
        # What template.yaml gives the WebSocket authorizer (its keys are fetched on first use, not at init).
        "JWT_ISSUER": "https://issuer.test",
        "JWT_AUDIENCE": "test-client",
    }
    for key in ("EMBEDDINGS_HIGH_QUEUE_URL", "EMBEDDINGS_NORMAL_QUEUE_URL", "EMBEDDINGS_LOW_QUEUE_URL"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, *_modules()],
        env=env,
        cwd=package,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_nothing_local_only_or_test_code_is_packaged(package):
    names = {p.name.split("-")[0] for p in package.iterdir()}
    assert not names & set(LOCAL_ONLY)
    assert not (package / "tests").exists() and not (package / "infra" / "local").exists()
    assert (package / "core" / "db" / "postgres" / "migrations" / "0001_core.sql").exists()
    assert not (package / "infra").exists()  # core reads its schema from itself
    assert not list(package.rglob("*.tokenizer.json"))  # local model assets stay out


def test_the_package_ships_bytecode_and_its_version(package):
    from importlib.metadata import PathDistribution

    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    assert list((package / "core" / "__pycache__").glob(f"__init__.{tag}.pyc"))
    assert list((package / "pydantic" / "__pycache__").glob(f"*.{tag}.pyc"))
    [info] = package.glob("serverless_agent_runtime-*.dist-info")
    assert PathDistribution(info).version == "0.1.0"


def test_tracing_works_from_the_package_alone(package):
    """``Tracing: Active`` needs the X-Ray SDK, which Lambda's runtime does not ship: the package has it."""
    script = (
        "from aws_lambda_powertools import Tracer\n"
        "tracer = Tracer(service='package-test', disabled=False, patch_modules=['botocore'])\n"
        "import aws_xray_sdk; print('traced with', aws_xray_sdk.__name__)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(package),
        "AWS_XRAY_SDK_ENABLED": "true",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", script], env=env, cwd=package, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "traced with aws_xray_sdk" in result.stdout
