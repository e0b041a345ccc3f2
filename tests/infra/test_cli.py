"""``python -m infra.cli tasks ...`` against a real database."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from infra.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def agent(database_url, monkeypatch):
    """A fresh agent named ``cli-<uuid>`` in the session's database, which ``DATABASE_URL`` points to."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    agent_id = uuid.uuid4()
    name = f"Cli-{agent_id}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO agents (id, name, character) VALUES (%s, %s, '{}')", (agent_id, name))
    return agent_id, name


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_create_then_list(agent, database_url):
    agent_id, name = agent
    status, out, err = run("tasks", "create", "--agent", name.lower(), "--name", "PING", "--tags", "queue,repeat",
                           "--interval-ms", "60000", "--metadata", '{"channel": "general"}', "--description", "hi")
    assert status == 0, err
    created = json.loads(out)
    assert created["agentId"] == str(agent_id) and created["status"] == "pending" and created["attempts"] == 0
    assert created["metadata"] == {"channel": "general", "updateInterval": 60000}
    assert created["nextRunAt"] >= created["createdAt"] + 60000 - 1

    status, out, _ = run("tasks", "create", "--agent", str(agent_id), "--name", "APPROVE", "--tags", "approval")
    assert status == 0 and "nextRunAt" not in json.loads(out)

    with psycopg.connect(database_url, autocommit=True) as conn:  # as the runner leaves a task it gave up on
        conn.execute("UPDATE tasks SET status = 'failed', attempts = 5, last_error = 'RuntimeError: down'"
                     " WHERE id = %s", (created["id"],))
    status, out, _ = run("tasks", "list", "--agent", name)
    lines = out.splitlines()
    assert status == 0 and lines[0].split()[:4] == ["ID", "NAME", "STATUS", "ATTEMPTS"]
    assert created["id"] in lines[1] and "failed" in lines[1] and "RuntimeError: down" in lines[1]
    assert "APPROVE" in lines[2] and "pending" in lines[2]

    status, out, _ = run("tasks", "list", "--agent", name, "--tags", "repeat", "--json")
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert (listed["id"], listed["status"], listed["lastError"]) == (created["id"], "failed", "RuntimeError: down")
    assert "leaseOwner" not in listed


def test_unknown_agent(agent):
    status, out, err = run("tasks", "list", "--agent", "nobody-at-all")
    assert (status, out) == (1, "") and "no agent 'nobody-at-all'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tags", "queue,repeat"], "updateInterval"),
        (["--metadata", "{not json"], "--metadata is not JSON"),
        (["--metadata", "[1]"], "JSON object"),
        (["--tags", "bad tag"], "tags"),
        (["--room-id", "nope"], "roomId"),
        (["--interval-ms", "0"], "updateInterval"),
    ],
)
def test_invalid_tasks_are_refused_before_any_database_work(monkeypatch, args, message):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # never reached
    status, out, err = run("tasks", "create", "--agent", "eliza", "--name", "PING", *args)
    assert status == 2 and out == "" and message in err


def test_database_problems_are_one_line_errors(monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url.replace("agents_test", "no_such_database"))
    monkeypatch.setenv("DB_POOL_TIMEOUT_S", "1")
    status, out, err = run("tasks", "list", "--agent", "eliza")
    assert status == 1 and out == "" and err.startswith("error: ") and "Traceback" not in err
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "zero")
    status, _, err = run("tasks", "list", "--agent", "eliza")
    assert status == 1 and "DB_POOL_MAX_SIZE" in err


def test_usage_errors(capsys):
    assert run("tasks")[0] == 2
    assert run("tasks", "list")[0] == 2  # --agent is required
    assert run("--help")[0] == 0


def test_runs_as_a_module(agent):
    _, name = agent
    result = subprocess.run([sys.executable, "-m", "infra.cli", "tasks", "list", "--agent", name, "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
