"""Database credentials from a Secrets Manager secret (moto), connecting to the real test Postgres."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from core.db.credentials import SecretConninfo, database_conninfo
from core.db.pool import create_pool
from core.errors import ConfigurationError
from core.settings import Settings
from core.settings.db import RDS_CA_BUNDLE


@pytest.fixture
def secrets():
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def _secret(client, value) -> str:
    body = value if isinstance(value, str) else json.dumps(value)
    return client.create_secret(Name=f"db-{len(body)}-{id(value)}", SecretString=body)["ARN"]


async def test_the_pool_connects_with_the_secrets_credentials(secrets, database_url):
    target = conninfo_to_dict(database_url)  # the embedded server: socket directory as host
    arn = _secret(
        secrets, {"username": "postgres", "password": "", "host": "db.invalid", "port": 5432, "dbname": "wrong"}
    )
    settings = Settings(
        database_secret_arn=arn,
        database_host=target["host"],
        database_name=target["dbname"],
        database_sslmode="disable",
    )
    pool = create_pool(settings)
    await pool.open()
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT current_database() AS db, current_user AS who")).fetchone()
        assert row == {"db": target["dbname"], "who": "postgres"}
    finally:
        await pool.close()


def test_secret_fields_fill_what_settings_leave_out(secrets):
    arn = _secret(
        secrets, {"username": "app", "password": "s3cr3t", "host": "proxy.example", "port": 6432, "dbname": "agents"}
    )
    info = conninfo_to_dict(SecretConninfo(Settings(database_secret_arn=arn))())
    assert (info["host"], info["port"], info["dbname"], info["user"], info["password"], info["sslmode"]) == (
        "proxy.example",
        "6432",
        "agents",
        "app",
        "s3cr3t",
        "verify-full",
    )
    assert info["sslrootcert"] == str(RDS_CA_BUNDLE)  # the RDS CAs shipped in the package
    assert info["connect_timeout"] == "10"


def test_modes_that_do_not_verify_name_no_root_certificate(secrets):
    arn = _secret(secrets, {"username": "app", "password": "pw", "host": "db.example"})
    info = conninfo_to_dict(SecretConninfo(Settings(database_secret_arn=arn, database_sslmode="require"))())
    assert info["sslmode"] == "require" and "sslrootcert" not in info


def test_the_shipped_ca_bundle_holds_current_rds_and_rds_proxy_authorities():
    import datetime
    import re
    import warnings

    from cryptography import x509

    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", RDS_CA_BUNDLE.read_text(), re.S)
    with warnings.catch_warnings():  # one old RDS root has a negative serial number
        warnings.simplefilter("ignore")
        certificates = [x509.load_pem_x509_certificate(p.encode()) for p in pems]
    subjects = " ".join(c.subject.rfc4514_string() for c in certificates)
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in subjects and "Amazon Root CA 1" in subjects
    now = datetime.datetime.now(datetime.UTC)
    assert sum(c.not_valid_after_utc > now for c in certificates) >= 80


def test_a_secret_missing_fields_is_named_without_values(secrets):
    arn = _secret(secrets, {"username": "app", "password": "hunter2"})
    with pytest.raises(ConfigurationError, match="host") as raised:
        SecretConninfo(Settings(database_secret_arn=arn))()
    assert "hunter2" not in str(raised.value)
    arn = _secret(secrets, "not json at all")
    with pytest.raises(Exception, match="(?i)json|transform|decode"):
        SecretConninfo(Settings(database_secret_arn=arn))()


def test_no_database_configured_names_both_settings():
    with pytest.raises(ConfigurationError, match="DATABASE_URL.*DATABASE_SECRET_ARN"):
        database_conninfo(Settings())
    assert database_conninfo(Settings(database_url="postgresql:///x")) == "postgresql:///x"


def test_settings_read_the_secret_variables():
    settings = Settings.from_env(
        {
            "DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:db",
            "DATABASE_HOST": "proxy",
            "DATABASE_NAME": "agents",
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SECRET_MAX_AGE_S": "60",
        }
    )
    assert (
        settings.database_host,
        settings.database_name,
        settings.database_sslmode,
        settings.database_secret_max_age_s,
    ) == ("proxy", "agents", "verify-full", 60)
    with pytest.raises(ConfigurationError, match="DATABASE_SSLMODE"):
        Settings.from_env({"DATABASE_SSLMODE": "sometimes"})


class _CountingSecrets:
    """A secrets source of the pool's own (no module cache): counts reads, returns one secret."""

    def __init__(self, secret: dict[str, object]) -> None:
        self.secret = secret
        self.reads: list[tuple[str, int | None]] = []

    def get(self, name: str, *, max_age: int | None = None, transform: object = None) -> object:
        self.reads.append((name, max_age))
        return self.secret


async def test_the_pool_reads_the_secret_from_the_source_it_is_given(database_url):
    target = conninfo_to_dict(database_url)
    source = _CountingSecrets(
        {"username": "postgres", "password": "", "host": target["host"], "dbname": target["dbname"]}
    )
    settings = Settings(database_secret_arn="arn:db", database_sslmode="disable", database_secret_max_age_s=42)
    pool = create_pool(settings, secrets=source)
    await pool.open()
    try:
        async with pool.connection() as conn:
            assert await (await conn.execute("SELECT current_user AS who")).fetchone() == {"who": "postgres"}
    finally:
        await pool.close()
    assert source.reads and set(source.reads) == {("arn:db", 42)}  # a new connection asks the source again
