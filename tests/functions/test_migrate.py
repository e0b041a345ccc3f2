"""functions.migrate: real CloudFormation custom resource events, answered with a real HTTP PUT to a
local server standing in for the pre-signed S3 ``ResponseURL``; real Postgres databases."""

from __future__ import annotations

import copy
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from core.db.migrations import ADVISORY_LOCK_KEY, core_migrations
from functions import migrate as migrate_fn
from infra.local.lambda_context import new_context

EVENTS = Path(__file__).resolve().parents[1] / "events"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    method: str
    path: str
    content_type: str | None
    content_length: int
    body: dict


class _Recorder(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        raw = self.rfile.read(length)
        self.server.received.put(
            Received(
                self.command,
                self.path,
                self.headers.get("Content-Type"),  # type: ignore[attr-defined]
                length,
                json.loads(raw),
            )
        )
        statuses = self.server.statuses  # type: ignore[attr-defined]
        self.send_response(statuses.pop(0) if statuses else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def cfn():
    """A local HTTP server recording the PUTs CloudFormation's S3 bucket would receive."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.received = queue.Queue()  # type: ignore[attr-defined]
    server.statuses = []  # type: ignore[attr-defined]  # HTTP statuses to answer first (then 200)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _event(cfn, kind: str, **properties) -> dict:
    """The real event, its ResponseURL re-aimed at the local server (path and query kept)."""
    event = copy.deepcopy(json.loads((EVENTS / f"pt-py.cloudformationCustomResource{kind}.json").read_text()))
    url = urlsplit(event["ResponseURL"])
    event["ResponseURL"] = urlunsplit(("http", f"127.0.0.1:{cfn.server_port}", url.path, url.query, ""))
    event["ResourceProperties"].update(properties)
    return event


def _answer(cfn, timeout: float = 10) -> Received:
    return cfn.received.get(timeout=timeout)


def _context(timeout_s: float = 300):
    return new_context("migrate", timeout_s=timeout_s, memory_mb=256)


@pytest.fixture
def scratch_db(postgres, request):
    name = f"mfn_{request.node.name.lower()[:40]}"
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    postgres.create_database(name)
    return postgres.database_url(name)


def _applied_versions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
            return []
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def _assert_echoes(answer: Received, event: dict) -> None:
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert answer.body[key] == event[key], key


def test_create_migrates_and_update_keeps_the_physical_id(cfn, scratch_db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", scratch_db)
    create = _event(cfn, "Create", SchemaVersion="0001")
    returned = migrate_fn.handler(create, _context())
    answer = _answer(cfn)

    assert answer.method == "PUT"
    assert answer.path == urlsplit(create["ResponseURL"]).path  # the pre-signed path, not re-encoded
    assert answer.content_type == ""  # the URL was signed without a Content-Type
    assert answer.content_length == len(json.dumps(answer.body).encode())
    assert answer.body == returned
    assert answer.body["Status"] == "SUCCESS" and "Reason" not in answer.body
    _assert_echoes(answer, create)
    physical_id = answer.body["PhysicalResourceId"]
    assert physical_id == f"{create['LogicalResourceId']}-schema-migrations"
    every = core_migrations()
    assert answer.body["Data"] == {
        "Applied": ", ".join(m.name for m in every),
        "AppliedCount": str(len(every)),
        "SchemaVersion": "0001",
    }
    assert _applied_versions(scratch_db) == [m.version for m in every]

    update = _event(cfn, "Update", SchemaVersion="0002")
    update["PhysicalResourceId"] = physical_id  # what CloudFormation sends back
    migrate_fn.handler(update, _context())
    answer = _answer(cfn)
    assert answer.body["Status"] == "SUCCESS"
    assert answer.body["PhysicalResourceId"] == physical_id  # stable: no replacement
    assert answer.body["Data"]["AppliedCount"] == "0"
    assert answer.body["Data"]["SchemaVersion"] == "0002"
    _assert_echoes(answer, update)


def test_real_update_event_echoes_its_physical_id(cfn, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    update = _event(cfn, "Update")
    migrate_fn.handler(update, _context())
    answer = _answer(cfn)
    assert answer.body["Status"] == "SUCCESS"
    assert answer.body["PhysicalResourceId"] == update["PhysicalResourceId"] == "xxxxxxxxx"
    assert answer.body["Data"]["AppliedCount"] == "0"
    _assert_echoes(answer, update)


def test_delete_keeps_the_schema(cfn, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    before = _applied_versions(database_url)
    delete = _event(cfn, "Delete")
    migrate_fn.handler(delete, _context())
    answer = _answer(cfn)
    assert answer.body["Status"] == "SUCCESS"
    assert answer.body["PhysicalResourceId"] == delete["PhysicalResourceId"]
    _assert_echoes(answer, delete)
    assert _applied_versions(database_url) == before
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('memories')").fetchone()[0] == "memories"


def test_delete_succeeds_without_a_database(cfn, monkeypatch):
    # A stack whose Create failed (bad DATABASE_URL) must still roll back: Delete never connects.
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    migrate_fn.handler(_event(cfn, "Delete"), _context())
    assert _answer(cfn).body["Status"] == "SUCCESS"
    monkeypatch.delenv("DATABASE_URL")
    migrate_fn.handler(_event(cfn, "Delete"), _context())
    assert _answer(cfn).body["Status"] == "SUCCESS"


def test_a_failing_migration_answers_failed_with_the_reason(cfn, scratch_db, monkeypatch):
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE agents (id int)")  # 0001_core.sql cannot create it
    monkeypatch.setenv("DATABASE_URL", scratch_db)
    create = _event(cfn, "Create")
    context = _context()
    migrate_fn.handler(create, context)
    answer = _answer(cfn)
    assert answer.body["Status"] == "FAILED"
    reason = answer.body["Reason"]
    assert "MigrationError" in reason and "0001_core.sql" in reason and "already exists" in reason
    assert context.log_stream_name in reason
    assert answer.body["PhysicalResourceId"] == f"{create['LogicalResourceId']}-schema-migrations"
    _assert_echoes(answer, create)
    assert _applied_versions(scratch_db) == []


def test_missing_database_url_answers_failed(cfn, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate_fn.handler(_event(cfn, "Update"), _context())
    answer = _answer(cfn)
    assert answer.body["Status"] == "FAILED"
    assert "DATABASE_URL" in answer.body["Reason"] and "DATABASE_SECRET_ARN" in answer.body["Reason"]


def test_unreachable_database_answers_failed_fast(cfn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    started = time.monotonic()
    migrate_fn.handler(_event(cfn, "Create"), _context())
    answer = _answer(cfn)
    assert time.monotonic() - started < migrate_fn.CONNECT_TIMEOUT_S
    assert answer.body["Status"] == "FAILED"
    assert "OperationalError" in answer.body["Reason"] and "127.0.0.1" in answer.body["Reason"]


def test_database_url_gets_a_connect_timeout_unless_it_has_one(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:5432/agents")
    assert f"connect_timeout={migrate_fn.CONNECT_TIMEOUT_S}" in migrate_fn.database_url()
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:5432/agents?connect_timeout=3")
    assert migrate_fn.database_url() == "postgresql://u@db.example:5432/agents?connect_timeout=3"


def test_a_migration_still_running_near_the_timeout_is_answered_failed(cfn, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    results: list[dict] = []
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))  # another migrate run
        context = _context(timeout_s=migrate_fn.RESPONSE_MARGIN_S + 1.5)
        started = time.monotonic()
        worker = threading.Thread(target=lambda: results.append(migrate_fn.handler(_event(cfn, "Update"), context)))
        worker.start()
        answer = _answer(cfn)
        answered_after = time.monotonic() - started
        assert answer.body["Status"] == "FAILED"
        assert "still running" in answer.body["Reason"]
        assert 1.0 <= answered_after < 5.0
        # The handler stays busy (Lambda's timeout would end the sandbox, closing the connection).
        assert worker.is_alive()
        holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert results[0]["Status"] == "FAILED"
    assert cfn.received.empty()  # answered once


def test_the_response_put_is_retried(cfn, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    cfn.statuses.extend([503])
    migrate_fn.handler(_event(cfn, "Update"), _context())
    first, second = _answer(cfn), _answer(cfn)
    assert first.body == second.body
    assert second.body["Status"] == "SUCCESS"


def test_an_undeliverable_response_raises_so_lambda_retries(database_url, monkeypatch, cfn):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr(migrate_fn, "PUT_ATTEMPTS", 2)
    cfn.statuses.extend([500, 500])
    with pytest.raises(URLError):
        migrate_fn.handler(_event(cfn, "Update"), _context())
    assert cfn.received.qsize() == 2


def test_the_response_fits_cloudformation_4_kib_limit(cfn):
    from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent

    event = CloudFormationCustomResourceEvent(_event(cfn, "Create"))
    body = migrate_fn._response(event, "FAILED", reason="x" * 10_000, data={"Applied": "y" * 1024})
    assert len(json.dumps(body).encode()) <= migrate_fn.MAX_RESPONSE_BYTES
    assert body["Reason"].endswith("[truncated]")
    assert body["Data"]["Applied"] == "y" * 1024


def test_make_migrate_applies_nothing_when_up_to_date(database_url):
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "infra.local.stack", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "migrations applied: none (up to date)" in done.stderr
