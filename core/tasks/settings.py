"""The scheduled run's settings: defined, with their variables, in ``core.settings.tasks``."""

from core.settings.tasks import HousekeepingSettings, TaskRunnerSettings

__all__ = ["HousekeepingSettings", "TaskRunnerSettings"]
