"""Token usage per model call: a ``useModel`` log row and a Powertools metric.

The log goes through ``runtime.adapter.log(model_usage_log(...))`` when the call has a
runtime with an adapter (a call without one, e.g. a bench, only emits the metric); during a
message turn ``AgentRuntime.log`` keeps it with the turn's other logs, written with the reply
(``take_logs``) or at the turn's end (``buffer_logs`` / ``write_logs``). A failure to write
the log is logged and swallowed: accounting never fails a reply.

Cost: with a price table setting ``MODEL_PRICES`` (JSON, US dollars per million tokens,
by model id: ``{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}``; a model id that is not
in the table is looked up by its longest listed prefix, so ``"gpt-4o-mini"`` prices
``"gpt-4o-mini-2024-07-18"``), the log body gets ``costUsd`` and the metric ``CostUsd``.

Metrics: one EMF blob per call (namespace ``POWERTOOLS_METRICS_NAMESPACE``, default
``ServerlessAgentRuntime``), dimensions ``Provider`` and ``ModelType``, metrics
``PromptTokens``, ``CompletionTokens``, ``TotalTokens``, ``ModelLatency`` (ms),
``ModelErrors`` and ``CostUsd``. ``POWERTOOLS_METRICS_DISABLED=true`` turns them off.

Run id: the body gets ``runId`` from ``runtime.get_current_run_id()`` when the runtime
has one (so a turn's model calls can be found together).

Who writes the row: a handler that calls ``record_usage`` (every handler wrapped by
``base.instrument``) writes its own, with model id and tokens. The model registry runs
each handler inside ``collect_usage()`` to see those bodies: it writes a row only for a
handler that wrote none, and reads the tokens for its ``MODEL_USED`` event from them.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from core.types import ModelType
from core.types.log import ModelUsageBody, model_usage_log
from core.types.model_runtime import ModelRuntime

logger = logging.getLogger(__name__)


@functools.cache
def _no_agent() -> ModelRuntime:
    """Settings of a call made without a runtime: the process environment alone.

    Made on first use, as the imports of ``_emit_metrics``: ``core.runtime`` imports this
    module, and Powertools (~25 ms) and the settings package (~20 ms) would otherwise be
    loaded by ``import core.runtime`` itself (``bench/import_time.py``).
    """
    from core.settings.providers import EnvironmentSettings

    return EnvironmentSettings()


#: Bodies recorded in the current ``collect_usage`` block (``None`` outside one).
_collected: ContextVar[list[ModelUsageBody] | None] = ContextVar("model_usage_collected", default=None)


@dataclass(frozen=True)
class Usage:
    """Tokens of one call, as the provider reported them (``None``: not reported)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None and self.prompt_tokens is not None and self.completion_tokens is not None:
            object.__setattr__(self, "total_tokens", self.prompt_tokens + self.completion_tokens)


def estimate_cost(prices: Any, model: str | None, usage: Usage) -> float | None:
    """Cost of a call in US dollars, or ``None`` without a price for ``model``.

    Args:
        prices: ``{model: {"input": usd_per_million, "output": usd_per_million}}`` or its
            JSON text.
        model: Model id the provider reported (or asked for).
        usage: The call's tokens.
    """
    table = _price_table(prices)
    if not table or not model or usage.prompt_tokens is None:
        return None
    price = table.get(model) or next(
        (table[k] for k in sorted(table, key=len, reverse=True) if model.startswith(k)), None
    )
    if not isinstance(price, Mapping):
        return None
    try:
        cost = usage.prompt_tokens * float(price.get("input", 0)) + (usage.completion_tokens or 0) * float(
            price.get("output", 0)
        )
    except (TypeError, ValueError):
        return None
    return round(cost / 1_000_000, 8)


def _price_table(prices: Any) -> dict[str, Any] | None:
    if isinstance(prices, str):
        try:
            prices = json.loads(prices)
        except ValueError:
            logger.warning("MODEL_PRICES is not JSON; costs are not estimated")
            return None
    return prices if isinstance(prices, dict) else None


async def record_usage(
    runtime: ModelRuntime | None,
    *,
    provider: str,
    model_type: ModelType,
    model: str | None,
    usage: Usage | None,
    duration_ms: float,
    error: str | None = None,
    cached: bool = False,
) -> ModelUsageBody:
    """Log one call and emit its metrics. Never raises.

    Args:
        runtime: The calling runtime (``AgentRuntime``...), or ``None``: settings from the
            environment, no log row.
        provider: Provider name (``"openai"``).
        model_type: What was called.
        model: Model id.
        usage: Tokens, when known.
        duration_ms: Wall time of the call (milliseconds).
        error: Scrubbed error message of a failed call.
        cached: Served from the response cache (no tokens spent).

    Returns:
        The body written (for tests and callers that want the figures).
    """
    usage = usage or Usage()
    # Raw: a character may give the table as a JSON object, the environment as JSON text.
    prices = (runtime or _no_agent()).get_setting("MODEL_PRICES")
    cost = None if cached else estimate_cost(prices, model, usage)
    extra: dict[str, Any] = {}
    if cost is not None:
        extra["costUsd"] = cost
    if cached:
        extra["cached"] = True
    body = ModelUsageBody(
        model_type=model_type.value,
        provider=provider,
        model=model,
        duration_ms=max(duration_ms, 0.0),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        run_id=_run_id(runtime),
        error=error,
        **extra,
    )
    collected = _collected.get()
    if collected is not None:
        collected.append(body)
    _emit_metrics(body, cost)
    adapter = runtime.adapter if runtime is not None else None
    agent_id = runtime.agent_id if runtime is not None else None
    if adapter is not None and agent_id is not None:
        # An AgentRuntime's own ``log`` keeps a turn's logs to write them together.
        write = getattr(runtime, "log", adapter.log)
        try:
            await write(model_usage_log(agent_id, body))
        except Exception:  # accounting must never fail the reply
            logger.warning("could not write the model usage log of %s/%s", provider, model_type.value, exc_info=True)
    return body


@contextmanager
def collect_usage() -> Iterator[list[ModelUsageBody]]:
    """Collect the bodies ``record_usage`` writes inside the block.

    Per task (a ``ContextVar``): a call awaited in the block is seen, concurrent calls of
    other tasks are not, and a nested block collects for itself alone.

    Yields:
        The list the bodies are appended to, in order.
    """
    bodies: list[ModelUsageBody] = []
    token = _collected.set(bodies)
    try:
        yield bodies
    finally:
        _collected.reset(token)


def _run_id(runtime: ModelRuntime | None) -> UUID | str | None:
    """The runtime's current run id (``AgentRuntime.get_current_run_id``), when it has one."""
    getter = getattr(runtime, "get_current_run_id", None)
    try:
        value = getter() if getter is not None else None
    except Exception:  # accounting never fails a call
        return None
    return value if isinstance(value, UUID | str) else None


def _emit_metrics(body: ModelUsageBody, cost: float | None) -> None:
    # Imported on the first call (free then: a Lambda handler has loaded Powertools): see _no_agent.
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    from core.settings.metrics import metrics_namespace

    if is_metrics_disabled():  # building the blob costs more than the rest of the bookkeeping
        return
    try:
        metrics = EphemeralMetrics(namespace=metrics_namespace())
        metrics.add_dimension(name="Provider", value=body.provider)
        metrics.add_dimension(name="ModelType", value=body.model_type)
        metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=body.duration_ms)
        for name, value in (
            ("PromptTokens", body.prompt_tokens),
            ("CompletionTokens", body.completion_tokens),
            ("TotalTokens", body.total_tokens),
        ):
            if value is not None:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if body.error:
            metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=1)
        if cost is not None:
            metrics.add_metric(name="CostUsd", unit=MetricUnit.NoUnit, value=cost)
        if body.model:
            metrics.add_metadata(key="model", value=body.model)
        metrics.flush_metrics()
    except Exception:
        logger.warning("could not emit model usage metrics", exc_info=True)
