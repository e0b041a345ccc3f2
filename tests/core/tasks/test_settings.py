"""Settings of the scheduled run, from the environment."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.settings.tasks import HousekeepingSettings, TaskRunnerSettings


def test_defaults():
    runner = TaskRunnerSettings.from_env({})
    assert (
        runner.concurrency,
        runner.task_timeout_s,
        runner.time_reserve_s,
        runner.lease_margin_s,
        runner.max_attempts,
        runner.retry_base_delay_s,
        runner.retry_max_delay_s,
        runner.max_per_run,
    ) == (4, 60, 10, 30, 5, 30, 3600, 500)
    assert runner.claim_needs_ms == 70_000
    house = HousekeepingSettings.from_env({})
    assert (
        house.embedding_pending_after_s,
        house.embedding_pending_max_age_s,
        house.embedding_requeue_limit,
        house.cache_sweep_limit,
    ) == (300, 86_400, 500, 1000)


def test_from_env():
    runner = TaskRunnerSettings.from_env(
        {
            "TASK_CONCURRENCY": "8",
            "TASK_TIMEOUT_S": "12.5",
            "TASK_TIME_RESERVE_S": "2",
            "TASK_LEASE_MARGIN_S": "0",
            "TASK_MAX_ATTEMPTS": "2",
            "TASK_RETRY_BASE_DELAY_S": "1",
            "TASK_RETRY_MAX_DELAY_S": "5",
            "TASK_MAX_PER_RUN": "9",
            "UNRELATED": "x",
            "TASK_CONCURRENCY_TYPO": "1",
        }
    )
    assert (
        runner.concurrency,
        runner.task_timeout_s,
        runner.claim_needs_ms,
        runner.max_attempts,
        runner.max_per_run,
        runner.lease_margin_s,
    ) == (8, 12.5, 14_500, 2, 9, 0)
    house = HousekeepingSettings.from_env(
        {
            "EMBEDDING_PENDING_AFTER_S": "60",
            "EMBEDDING_PENDING_MAX_AGE_S": "600",
            "EMBEDDING_REQUEUE_LIMIT": "10",
            "CACHE_SWEEP_LIMIT": "20",
        }
    )
    assert (
        house.embedding_pending_after_s,
        house.embedding_pending_max_age_s,
        house.embedding_requeue_limit,
        house.cache_sweep_limit,
    ) == (60, 600, 10, 20)


def test_retry_delay_doubles_up_to_the_maximum():
    settings = TaskRunnerSettings(retry_base_delay_s=30, retry_max_delay_s=200)
    assert [settings.retry_delay_ms(a) for a in (0, 1, 2, 3, 4, 10_000)] == [
        30_000,
        30_000,
        60_000,
        120_000,
        200_000,
        200_000,
    ]
    assert TaskRunnerSettings(retry_base_delay_s=0, retry_max_delay_s=0).retry_delay_ms(3) == 0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TASK_CONCURRENCY": "0"}, "TASK_CONCURRENCY"),
        ({"TASK_CONCURRENCY": "four"}, "TASK_CONCURRENCY"),
        ({"TASK_TIMEOUT_S": "0"}, "TASK_TIMEOUT_S"),
        ({"TASK_TIMEOUT_S": "901"}, "TASK_TIMEOUT_S"),
        ({"TASK_MAX_ATTEMPTS": "0"}, "TASK_MAX_ATTEMPTS"),
        ({"TASK_TIME_RESERVE_S": "-1"}, "TASK_TIME_RESERVE_S"),
        ({"TASK_MAX_PER_RUN": "0"}, "TASK_MAX_PER_RUN"),
        ({"TASK_RETRY_BASE_DELAY_S": "60", "TASK_RETRY_MAX_DELAY_S": "30"}, "TASK_RETRY_MAX_DELAY_S"),
    ],
)
def test_bad_runner_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigurationError, match=variable):
        TaskRunnerSettings.from_env(env)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EMBEDDING_PENDING_AFTER_S": "-1"}, "EMBEDDING_PENDING_AFTER_S"),
        ({"EMBEDDING_PENDING_AFTER_S": "600", "EMBEDDING_PENDING_MAX_AGE_S": "600"}, "EMBEDDING_PENDING_MAX_AGE_S"),
        ({"EMBEDDING_REQUEUE_LIMIT": "1001"}, "EMBEDDING_REQUEUE_LIMIT"),
        ({"CACHE_SWEEP_LIMIT": "0"}, "CACHE_SWEEP_LIMIT"),
    ],
)
def test_bad_housekeeping_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigurationError, match=variable):
        HousekeepingSettings.from_env(env)


def test_settings_are_frozen():
    with pytest.raises(ValueError):
        TaskRunnerSettings().concurrency = 9  # type: ignore[misc]


def test_a_malformed_value_is_named_with_what_is_wrong_and_the_value():
    with pytest.raises(ConfigurationError) as caught:
        TaskRunnerSettings.from_env({"TASK_CONCURRENCY": "four", "TASK_MAX_PER_RUN": "0"})
    assert str(caught.value) == "TASK_CONCURRENCY: must be an integer, got 'four'"  # parsed before bounds
    with pytest.raises(ConfigurationError) as caught:
        TaskRunnerSettings.from_env({"TASK_CONCURRENCY": "0", "TASK_MAX_PER_RUN": "10001"})
    assert str(caught.value) == (
        "TASK_CONCURRENCY: must be at least 1, got 0; TASK_MAX_PER_RUN: must be at most 10000, got 10001"
    )


def test_blank_variables_are_unset_and_values_are_trimmed():
    settings = TaskRunnerSettings.from_env({"TASK_CONCURRENCY": "  ", "TASK_TIMEOUT_S": " 30 "})
    assert (settings.concurrency, settings.task_timeout_s) == (4, 30.0)


def test_every_variable_is_in_the_module_table():
    import core.settings.tasks as module

    for group in (TaskRunnerSettings, HousekeepingSettings):
        for variable in group.variables().values():
            assert f"``{variable}``" in (module.__doc__ or ""), variable
