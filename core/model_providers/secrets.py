"""API keys: from the settings, or from Secrets Manager / SSM Parameter Store, cached.

For a key named ``NAME`` (``OPENAI_API_KEY``...), in order:

1. ``NAME`` itself: ``runtime.get_setting`` (character secrets, character settings, process
   settings, environment), or the environment when there is no runtime.
2. ``NAME_SECRET_ID``: a Secrets Manager secret (name or ARN). A secret holding a JSON
   object gives its ``NAME`` member (one secret can hold several keys); any other secret
   string is the key itself.
3. ``NAME_PARAMETER``: an SSM parameter (a ``SecureString`` is decrypted).

Fetched through Powertools parameters and kept for ``MODEL_SECRETS_MAX_AGE_S`` seconds
(default 300): one AWS call per container per five minutes, and a rotated key is picked up
without a redeploy. The fetch runs in a worker thread (boto3 blocks).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from core import aws
from core.errors import ModelError

DEFAULT_MAX_AGE_S = 300.0

_cache: dict[tuple[str, str], tuple[str, float]] = {}
_secrets_provider: Any = None
_ssm_provider: Any = None


def configure(*, secrets_client: Any = None, ssm_client: Any = None) -> None:
    """Use these boto3 clients (tests: stubbed ones) and forget cached values."""
    global _secrets_provider, _ssm_provider
    from aws_lambda_powertools.utilities import parameters

    _secrets_provider = parameters.SecretsProvider(boto3_client=secrets_client) if secrets_client else None
    _ssm_provider = parameters.SSMProvider(boto3_client=ssm_client) if ssm_client else None
    _cache.clear()


def has_source(name: str, environ: Any = None) -> bool:
    """True when the environment gives ``name`` or a reference to where it is stored."""
    env = os.environ if environ is None else environ
    return any(env.get(n) for n in (name, f"{name}_SECRET_ID", f"{name}_PARAMETER"))


async def resolve(runtime: Any, name: str, *, provider: str) -> str | None:
    """The value of the key ``name``, or ``None`` when no source is set.

    Args:
        runtime: The calling runtime (its settings come first), or ``None``.
        name: Setting name (``"OPENAI_API_KEY"``).
        provider: Provider name, for errors.

    Raises:
        ModelError: a secret or parameter is named but cannot be read (not retryable: a
            missing permission or a wrong name is not fixed by trying again). The message
            names the setting and the AWS error code, never a value.
    """
    direct = _setting(runtime, name)
    if direct:
        return str(direct)
    for suffix, fetch in (("_SECRET_ID", _fetch_secret), ("_PARAMETER", _fetch_parameter)):
        ref = _setting(runtime, name + suffix)
        if not ref:
            continue
        key = (suffix, str(ref))
        cached = _cache.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        try:
            raw = await asyncio.to_thread(fetch, str(ref))
        except Exception as exc:
            raise ModelError(f"{provider}: cannot read {name}{suffix} ({_aws_code(exc)})",
                             provider=provider) from None
        value = _member(raw, name)
        _cache[key] = (value, time.monotonic() + _max_age(runtime))
        return value
    return None


def _member(raw: str | bytes, name: str) -> str:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(parsed, dict) and isinstance(parsed.get(name), str):
        return parsed[name]
    return text.strip()


def _fetch_secret(ref: str) -> str | bytes:
    global _secrets_provider
    from aws_lambda_powertools.utilities import parameters

    if _secrets_provider is None:
        _secrets_provider = parameters.SecretsProvider(boto3_client=aws.client("secretsmanager"))
    return _secrets_provider.get(ref, max_age=0)


def _fetch_parameter(ref: str) -> str:
    global _ssm_provider
    from aws_lambda_powertools.utilities import parameters

    if _ssm_provider is None:
        _ssm_provider = parameters.SSMProvider(boto3_client=aws.client("ssm"))
    return _ssm_provider.get(ref, decrypt=True, max_age=0)


def _aws_code(exc: BaseException) -> str:
    """The AWS error code (``AccessDeniedException``...) of ``exc`` or of the error it was
    raised while handling (Powertools wraps botocore's error), else the class name."""
    for error in (exc, exc.__cause__, exc.__context__):
        response = getattr(error, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            return str(response["Error"]["Code"])
    return type(exc).__name__


def _max_age(runtime: Any) -> float:
    value = _setting(runtime, "MODEL_SECRETS_MAX_AGE_S")
    try:
        return float(value) if value not in (None, "") else DEFAULT_MAX_AGE_S
    except (TypeError, ValueError):
        return DEFAULT_MAX_AGE_S


def _setting(runtime: Any, key: str) -> Any:
    getter = getattr(runtime, "get_setting", None)
    return getter(key) if getter is not None else os.environ.get(key)
