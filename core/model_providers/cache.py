"""Optional response cache for deterministic text calls, in the database cache table.

Off by default. ``MODEL_RESPONSE_CACHE=true`` turns it on; ``MODEL_RESPONSE_CACHE_TTL_S``
sets the time to live (default 3600 s). Only calls that ask for ``temperature`` 0 are
cached: anything sampled would give another answer next time, so caching it would change
behaviour. The key is a SHA-256 of everything that shapes the answer (provider, model,
model type, system, messages, prompt, token limit, stop sequences, schema), prefixed
``model-response:``; entries are per agent (the cache table is scoped by ``agent_id``).

A cache read or write that fails is logged and ignored: the cache is an optimisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from core.types.model_runtime import ModelRuntime

logger = logging.getLogger(__name__)

KEY_PREFIX = "model-response:"
DEFAULT_TTL_S = 3600.0
#: Params that change the answer; anything else (callbacks, run ids) does not.
_KEYED_PARAMS = (
    "system",
    "messages",
    "prompt",
    "max_tokens",
    "maxTokens",
    "stop_sequences",
    "stopSequences",
    "schema",
    "schema_name",
    "temperature",
    "top_p",
    "dimensions",
)


def is_enabled(runtime: ModelRuntime) -> bool:
    """True when ``MODEL_RESPONSE_CACHE`` is on and the runtime has an adapter and an agent to scope by.

    Raises:
        ConfigurationError: ``MODEL_RESPONSE_CACHE`` is not a boolean.
    """
    return (
        runtime.setting("MODEL_RESPONSE_CACHE", bool, False)
        and runtime.adapter is not None
        and runtime.agent_id is not None
    )


def is_deterministic(params: Mapping[str, Any]) -> bool:
    """True when the call asks for temperature 0 (a missing temperature means sampling)."""
    temperature = params.get("temperature")
    return isinstance(temperature, int | float) and not isinstance(temperature, bool) and temperature == 0


def cache_key(provider: str, model: str, model_type: str, params: Mapping[str, Any]) -> str:
    """The cache key of a call: ``model-response:`` + SHA-256 hex of its canonical JSON."""
    shaped = {k: params[k] for k in _KEYED_PARAMS if params.get(k) is not None}
    text = json.dumps(
        [provider, model, model_type, shaped], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return KEY_PREFIX + hashlib.sha256(text.encode()).hexdigest()


async def get(runtime: ModelRuntime, key: str) -> str | None:
    """The cached text under ``key``, or ``None`` (missing, expired, no agent, or the read failed)."""
    adapter, agent_id = runtime.adapter, runtime.agent_id
    if adapter is None or agent_id is None:
        return None
    try:
        value = await adapter.get_cache(agent_id, key)
    except Exception:
        logger.warning("model response cache read failed; calling the model", exc_info=True)
        return None
    text = value.get("text") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


async def put(runtime: ModelRuntime, key: str, text: str) -> None:
    """Store ``text`` under ``key`` for ``MODEL_RESPONSE_CACHE_TTL_S`` seconds; a failure is logged, not raised."""
    adapter, agent_id = runtime.adapter, runtime.agent_id
    if adapter is None or agent_id is None:
        return
    try:
        # Read here, inside the guard: a malformed TTL is logged (naming the setting), never fails a reply.
        ttl_s = runtime.setting("MODEL_RESPONSE_CACHE_TTL_S", float, DEFAULT_TTL_S, minimum=0.0)
        await adapter.set_cache(agent_id, key, {"text": text}, ttl_s)
    except Exception:
        logger.warning("model response cache write failed", exc_info=True)
