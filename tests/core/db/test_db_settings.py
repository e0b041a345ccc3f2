"""core.settings.db: every DATABASE_*, DB_POOL_* and DB_RETRY_* variable, read by the one rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.db.retry import RetryPolicy
from core.errors import ConfigurationError
from core.settings import Settings
from core.settings.db import DatabaseSettings, RetrySettings


def test_defaults_are_lambdas():
    settings = DatabaseSettings.from_env({})
    assert (settings.database_url, settings.database_sslmode, settings.database_secret_max_age_s) == (
        "",
        "verify-full",
        300,
    )
    assert Path(settings.database_sslrootcert).is_file()
    assert (settings.pool_min_size, settings.pool_max_size, settings.pool_timeout_s, settings.pool_check_after_s) == (
        0,
        1,
        10.0,
        1.0,
    )
    assert RetrySettings.from_env({}) == RetrySettings(attempts=3, base_delay_ms=50, max_delay_ms=1000)


def test_every_variable_is_read():
    settings = DatabaseSettings.from_env(
        {
            "DATABASE_URL": "postgresql:///x",
            "DATABASE_SECRET_ARN": "arn:s",
            "DATABASE_HOST": "proxy",
            "DATABASE_NAME": "agents",
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SECRET_MAX_AGE_S": "60",
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "5",
            "DB_POOL_TIMEOUT_S": "2.5",
            "DB_POOL_CHECK_AFTER_S": "0",
        }
    )
    assert settings == DatabaseSettings(
        database_url="postgresql:///x",
        database_secret_arn="arn:s",
        database_host="proxy",
        database_name="agents",
        database_sslmode="verify-full",
        database_secret_max_age_s=60,
        pool_min_size=1,
        pool_max_size=5,
        pool_timeout_s=2.5,
        pool_check_after_s=0,
    )


def test_blank_is_unset():
    assert DatabaseSettings.from_env({"DB_POOL_MAX_SIZE": "  ", "DATABASE_SSLMODE": ""}) == DatabaseSettings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DB_POOL_MAX_SIZE": "many"}, "DB_POOL_MAX_SIZE: must be an integer, got 'many'"),
        ({"DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE: must be at least 1"),
        ({"DB_POOL_TIMEOUT_S": "0"}, "DB_POOL_TIMEOUT_S: must be more than 0"),
        ({"DB_POOL_CHECK_AFTER_S": "nan"}, "DB_POOL_CHECK_AFTER_S"),
        ({"DB_POOL_MIN_SIZE": "3", "DB_POOL_MAX_SIZE": "2"}, "DB_POOL_MAX_SIZE: must be at least DB_POOL_MIN_SIZE"),
        ({"DATABASE_SSLMODE": "sometimes"}, "DATABASE_SSLMODE"),
        ({"DATABASE_SECRET_MAX_AGE_S": "-1"}, "DATABASE_SECRET_MAX_AGE_S: must be at least 0"),
    ],
)
def test_a_bad_value_names_its_variable(environ, message):
    with pytest.raises(ConfigurationError, match=message):
        DatabaseSettings.from_env(environ)


def test_the_process_settings_are_database_settings():
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql:///x", "DB_POOL_MAX_SIZE": "3", "EMBEDDING_DIMENSION": "768"}
    )
    assert isinstance(settings, DatabaseSettings)
    assert (settings.database_url, settings.pool_max_size, settings.embedding_dimension) == ("postgresql:///x", 3, 768)
    assert Settings(database_url="postgresql:///y", pool_max_size=4).pool_max_size == 4  # by field name, as before
    with pytest.raises(ConfigurationError, match="DB_POOL_MAX_SIZE"):
        Settings.from_env({"DB_POOL_MAX_SIZE": "0"})


def test_the_retry_policy_is_its_settings():
    policy = RetryPolicy.from_env({"DB_RETRY_ATTEMPTS": "4", "DB_RETRY_BASE_DELAY_MS": "10"})
    assert isinstance(policy, RetryPolicy) and isinstance(policy, RetrySettings)
    assert (policy.attempts, policy.base_delay_ms, policy.max_delay_ms) == (4, 10, 1000)
    assert [policy.backoff_ms(n) for n in (1, 2, 3)] == [10, 20, 40]
    with pytest.raises(ConfigurationError, match="DB_RETRY_BASE_DELAY_MS: must be at least 0"):
        RetryPolicy.from_env({"DB_RETRY_BASE_DELAY_MS": "-1"})
