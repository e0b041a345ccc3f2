"""Logs, metrics and traces of a Lambda function, set up in one place.

Each handler module builds one :class:`Observability` in its init phase and decorates its
entry point with :meth:`Observability.lambda_handler`:

* **Logs**: a Powertools ``Logger`` (JSON lines on stdout, or one short line each when stdout
  is a terminal outside Lambda: ``functions.log_format``; the Lambda context on each, the
  service from ``POWERTOOLS_SERVICE_NAME`` or the function's default). The stdlib loggers of
  ``core`` are pointed at the same handler (Powertools' ``copy_config_to_registered_loggers``,
  limited to the ``core`` tree), so their lines are the same JSON with the same keys, and a
  :class:`~core.log_context.LogContextFilter` on that handler adds the keys the runtime binds
  (``agent_id``, ``room_id``, ``run_id``) to every line, ours and ``core``'s.
* **Metrics**: a Powertools ``Metrics`` (CloudWatch EMF; namespace from
  ``POWERTOOLS_METRICS_NAMESPACE``, default ``ServerlessAgentRuntime``; dimension ``service``),
  flushed after each invocation (``log_metrics``, with the ``ColdStart`` metric), plus
  :meth:`Observability.count` for a metric with dimensions of its own.
* **Traces** (X-Ray, through Powertools ``Tracer``), only when :func:`tracing_enabled`:
  otherwise the X-Ray SDK is never imported (its import alone takes longer than the rest of
  a cold start). ``aws-xray-sdk`` is a runtime dependency (``aws-lambda-powertools[tracer]``:
  Lambda's Python runtimes do not ship it), so the deployment package has it; a package
  built without it logs a warning when tracing is enabled and runs untraced.

Tracing is on when ``POWERTOOLS_TRACE_DISABLED`` is not true and either ``TRACING_ENABLED``
is true (an explicit opt-in, e.g. with a local X-Ray daemon) or the process runs in Lambda
(``AWS_LAMBDA_FUNCTION_NAME``, not SAM local) with X-Ray configured (``AWS_XRAY_DAEMON_ADDRESS``
or ``_X_AMZN_TRACE_ID`` set). ``template.yaml`` sets ``POWERTOOLS_TRACE_DISABLED`` from its
``Tracing`` parameter. Traced calls: the handler, ``botocore`` (SQS, Secrets Manager) and
``httpx`` (hosted model providers); responses are not recorded unless
``POWERTOOLS_TRACER_CAPTURE_RESPONSE=true`` (they hold users' messages).

In the local stack several functions share one process (the gateway, the SQS poller and the
scheduler each invoke theirs on their own thread): the ``core`` logger has one handler that
hands each record to the handler of the function invoked in the current context (a
``contextvars`` variable, set per invocation: per thread, and inherited by the asyncio tasks
and worker threads of that invocation), so a line carries its own function's service and
correlation id even while two functions run at the same time. Outside any invocation (an init
phase), lines go to the function routed last.

With metrics disabled (``POWERTOOLS_METRICS_DISABLED``), Powertools' ``log_metrics`` keeps
the invocation's metrics instead of printing them, and its ``add_metric`` prints the buffer
once it holds 100 values of a metric: each invocation clears it instead.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from core.log_context import LogContextFilter
from core.settings.metrics import metrics_namespace
from functions.log_format import powertools_formatter

Handler = TypeVar("Handler", bound=Callable[..., Any])

SERVICE_ENV = "POWERTOOLS_SERVICE_NAME"
#: Top-level stdlib loggers whose lines go through the function's Powertools handler.
CORE_LOGGERS = frozenset({"core"})
#: Libraries the X-Ray SDK patches when tracing is on: where the remote calls are.
TRACED_MODULES = ("botocore", "httpx")

_TRUE = frozenset({"1", "true", "yes", "on"})

_EMPTY_METRICS_WARNING = "No application metrics to publish"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process should trace (see the module docstring for the rule).

    Args:
        environ: The environment to read (``os.environ`` by default).
    """
    env = os.environ if environ is None else environ
    if _truthy(env.get("POWERTOOLS_TRACE_DISABLED")):
        return False
    if _truthy(env.get("TRACING_ENABLED")):
        return True
    in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and not _truthy(env.get("AWS_SAM_LOCAL"))
    return in_lambda and bool(env.get("AWS_XRAY_DAEMON_ADDRESS") or env.get("_X_AMZN_TRACE_ID"))


def _quiet_empty_metrics() -> None:
    """Silence Powertools' warning for an invocation that recorded no metric.

    An HTTP route that counts nothing (``GET /agents``) is normal. Checked per invocation
    because a test runner resets the warning filters around each test.
    """
    if not any(
        f[0] == "ignore" and f[1] is not None and f[1].pattern == _EMPTY_METRICS_WARNING for f in warnings.filters
    ):
        warnings.filterwarnings("ignore", message=_EMPTY_METRICS_WARNING, category=UserWarning)


def routes_core_logs(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``core``'s loggers are routed through the function's handler (module docstring).

    Args:
        environ: The environment to read (``os.environ`` by default).
    """
    env = os.environ if environ is None else environ
    explicit = (env.get("CORE_LOGS_JSON") or "").strip().lower()
    if explicit:
        return explicit in _TRUE
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))


#: The function whose handler takes ``core``'s records in this context (module docstring).
_INVOKED: ContextVar[Logger | None] = ContextVar("observability_invoked_logger", default=None)


class CoreLogRouter(logging.Handler):
    """The one handler of the ``core`` logger: each record goes to the handler of the function
    invoked in the current context, else to the function routed last, at that function's level.

    ``handle`` is overridden without the handler lock of ``logging.Handler.handle``: the
    target handler takes its own, and a lock here would serialise every function's logging.
    """

    def __init__(self) -> None:
        super().__init__()
        self.default: Logger | None = None
        self.routed: list[Logger] = []

    def add(self, logger: Logger) -> None:
        """Make ``logger`` a target, and the default one (outside any invocation)."""
        if not any(known is logger for known in self.routed):
            self.routed.append(logger)
        self.default = logger

    def lowest_level(self) -> int:
        """The lowest level of the targets: what the ``core`` logger must let through."""
        return min((logger.log_level for logger in self.routed), default=logging.WARNING)

    def handle(self, record: logging.LogRecord) -> bool:
        target = _INVOKED.get() or self.default
        if target is None or record.levelno < target.log_level:
            return False
        target.registered_handler.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


#: The process's router (one ``core`` logger per process).
ROUTER = CoreLogRouter()


def route_core_logs(logger: Logger) -> None:
    """Send the ``core`` loggers' records through ``logger``'s handler outside invocations, and
    through it during its own invocations (:meth:`Observability.lambda_handler`).

    Idempotent and cheap when already done (each invocation calls it, in case something
    replaced the ``core`` logger's handlers).
    """
    core = logging.getLogger("core")
    if core.handlers != [ROUTER]:
        core.handlers = [ROUTER]
        core.propagate = False  # as Powertools' copy_config_to_registered_loggers: no line twice
    if ROUTER.default is not logger:
        ROUTER.add(logger)
        logger.append_keys(name="%(name)s")  # the record's logger name on the line
    level = ROUTER.lowest_level()
    if core.level != level:
        core.setLevel(level)


def _install_log_context(logger: Logger) -> None:
    handler = logger.registered_handler
    if not any(isinstance(f, LogContextFilter) for f in handler.filters):
        handler.addFilter(LogContextFilter())


class Observability:
    """The logger, metrics and (optional) tracer of one Lambda function.

    Args:
        default_service: Service name when ``POWERTOOLS_SERVICE_NAME`` is unset
            (``agent-messages``...).

    Attributes:
        service: The service name on every log line and metric.
        routes_core_logs: Whether ``core``'s lines go through :attr:`logger`'s handler.
        namespace: The CloudWatch namespace of the metrics.
        logger: The function's Powertools ``Logger``.
        metrics: The function's Powertools ``Metrics``, flushed after each invocation.
    """

    def __init__(self, default_service: str) -> None:
        self.service = os.environ.get(SERVICE_ENV) or default_service
        self.namespace = metrics_namespace()
        # JSON as deployed; one short line per record in a terminal (functions.log_format).
        self.logger = Logger(service=self.service, logger_formatter=powertools_formatter())
        _install_log_context(self.logger)
        self.routes_core_logs = routes_core_logs()
        if self.routes_core_logs:  # before the init phase, so that its lines are JSON too
            route_core_logs(self.logger)
        self.metrics = Metrics(namespace=self.namespace, service=self.service)

    def lambda_handler(self, correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator for the entry point: Lambda context and correlation id on every line,
        metrics flushed after each invocation (with ``ColdStart``), a trace when enabled.

        Args:
            correlation_id_path: JMESPath of the event's correlation id (Powertools
                ``correlation_paths``), e.g. ``API_GATEWAY_HTTP`` for the API request id.
        """

        def decorate(handler: Handler) -> Handler:
            # Powertools prints the ColdStart blob even when metrics are disabled: ask only when enabled.
            inner = self.metrics.log_metrics(handler, capture_cold_start_metric=not is_metrics_disabled())
            inner = self._traced(inner)
            inner = self._named(inner)
            inner = self.logger.inject_lambda_context(inner, correlation_id_path=correlation_id_path, clear_state=True)

            @functools.wraps(handler)
            def entry(event: Any, context: Any) -> Any:
                _quiet_empty_metrics()
                token = None
                if self.routes_core_logs:
                    route_core_logs(self.logger)
                    token = _INVOKED.set(self.logger)
                try:
                    return inner(event, context)
                finally:
                    if token is not None:
                        _INVOKED.reset(token)
                    if is_metrics_disabled():  # Powertools keeps them then (module docstring)
                        self.metrics.clear_metrics()

            return entry  # type: ignore[return-value]

        return decorate

    def _named(self, handler: Handler) -> Handler:
        # ``clear_state`` drops every appended key at the start of an invocation, the logger
        # name that ``copy_config_to_registered_loggers`` adds too: put it back each time.
        @functools.wraps(handler)
        def named(event: Any, context: Any) -> Any:
            self.logger.append_keys(name="%(name)s")
            return handler(event, context)

        return named  # type: ignore[return-value]

    def count(self, name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: object) -> None:
        """Emit one metric now, in an EMF blob of its own, split by ``dimensions``.

        The value is published twice by CloudWatch from the one blob: under ``service`` alone
        (the total) and under ``service`` plus ``dimensions`` (the split), so a dashboard needs
        no metric math for the total. For figures whose dimensions the invocation's other
        metrics must not get (e.g. ``MessageErrors`` by ``StatusClass``). Never raises: a
        metric never fails a request.
        """
        if is_metrics_disabled():
            return
        try:
            blob = EphemeralMetrics(namespace=self.namespace, service=self.service)
            if dimensions:
                blob.add_dimensions(service=self.service, **{k: str(v) for k, v in dimensions.items()})
            blob.add_metric(name=name, unit=unit, value=value)
            blob.flush_metrics()
        except Exception:
            self.logger.warning("could not emit metric %s", name, exc_info=True)

    def _traced(self, handler: Handler) -> Handler:
        """``handler`` under ``Tracer.capture_lambda_handler`` when tracing is on, else itself."""
        if not tracing_enabled():
            return handler
        try:
            tracer = Tracer(service=self.service, disabled=False, patch_modules=TRACED_MODULES)
        except ImportError as exc:
            self.logger.warning(
                "tracing is enabled but the X-Ray SDK cannot be imported (%s): running untraced;"
                " build the package with aws-lambda-powertools[tracer] to trace",
                exc,
            )
            return handler
        except Exception:  # a tracer must never stop the function from starting
            self.logger.warning("tracing could not be set up: running untraced", exc_info=True)
            return handler
        capture = None if os.environ.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE") else False
        # Powertools types its wrapper as Callable[..., Any]; it keeps the handler's signature.
        return cast(Handler, tracer.capture_lambda_handler(handler, capture_response=capture))
