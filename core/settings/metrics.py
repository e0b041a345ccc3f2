"""Where metrics go: the CloudWatch namespace of every EMF blob (handlers, model usage, retention).

| variable | default | meaning |
|---|---|---|
| ``POWERTOOLS_METRICS_NAMESPACE`` | ``ServerlessAgentRuntime`` | Powertools' own variable, read the same way here |
"""

from __future__ import annotations

from pydantic import Field

from core.settings.groups import SettingsGroup

DEFAULT_NAMESPACE = "ServerlessAgentRuntime"


class MetricsSettings(SettingsGroup):
    """Attributes:
    namespace: ``POWERTOOLS_METRICS_NAMESPACE``; blank: ``DEFAULT_NAMESPACE``.
    """

    namespace: str = Field(default=DEFAULT_NAMESPACE, min_length=1, validation_alias="POWERTOOLS_METRICS_NAMESPACE")


def metrics_namespace() -> str:
    """The namespace as the environment says now (read per blob: tests and the local stack set it late)."""
    return MetricsSettings.from_env().namespace
