"""The local stack's lifecycle, as a user lives it: ``python -m infra.local.stack serve`` in its own
process (scripted models, a data directory under /tmp), bad starts, Ctrl-C, SIGTERM, ``kill -9``,
and the ``agent`` command finding it from another directory.

"Nothing left behind" is checked in /proc: no process whose environment carries the test's
``LOCAL_DATA_DIR`` (the stack, its watchdog, pg_ctl, Postgres and its workers all inherit it) and
none whose command line names the data directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a test waits for the stack to be ready (scripted models: ~2-5 s on 2 busy cores).
READY_S = 90
#: Seconds after which nothing of a stopped or killed stack may remain.
GONE_S = 10


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "EMBEDDINGS_", "AWS_ENDPOINT", "LOG_", "PYTEST"))
    }
    env.update(
        {
            "LOCAL_DATA_DIR": str(data_dir),
            "MODEL_PLUGINS": "core.model_providers.scripted",
            "PORT": "0",
            "TASKS_INTERVAL_S": "3600",
        }
    )
    env.update(extra)
    return env


def _data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="stack-lifecycle-", dir="/tmp")) / "data"


def _leftovers(data_dir: Path) -> list[str]:
    """Live processes of a stack on ``data_dir`` (not zombies): ``"pid command line"`` each."""
    marker, path = f"LOCAL_DATA_DIR={data_dir}".encode(), str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            environ, cmdline = (entry / "environ").read_bytes(), (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if marker in environ.split(b"\0") or path in cmdline:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(f"{entry.name} {command}")
    return found


def _assert_nothing_left(data_dir: Path, within_s: float = GONE_S) -> None:
    deadline = time.monotonic() + within_s
    while (left := _leftovers(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"still running after {within_s} s: {left}"


def _run(data_dir: Path, *args: str, cwd: Path = ROOT, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(data_dir, **extra), capture_output=True, text=True, timeout=120
    )


class Stack:
    """A stack running in a subprocess, its output in files."""

    started: list[Stack] = []

    def __init__(self, data_dir: Path, **extra: str) -> None:
        Stack.started.append(self)
        self.data_dir = data_dir
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = data_dir.parent / "stdout", data_dir.parent / "stderr"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.local.stack", "serve"],
                cwd=ROOT,
                env=_env(data_dir, **extra),
                stdout=out,
                stderr=err,
            )
        self.state = self._wait_ready()

    def _wait_ready(self) -> dict:
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the stack exited ({self.proc.returncode}):\n{self.stderr}")
            try:
                return json.loads((self.data_dir / "stack.json").read_text())
            except (OSError, ValueError):
                time.sleep(0.2)
        self.proc.kill()
        pytest.fail(f"the stack was not ready after {READY_S} s:\n{self.stderr}")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(60)


@pytest.fixture(autouse=True, scope="module")
def _kill_stacks_left_by_failed_tests() -> Iterator[None]:
    """A failed assertion must not leave a stack running: kill -9 (its watchdog stops its Postgres)."""
    yield
    for started in Stack.started:
        if started.proc.poll() is None:
            started.proc.kill()
            started.proc.wait()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One stack for the tests that only use it (the CLI, a second start, its logs)."""
    running = Stack(_data_dir())
    yield running
    status = running.stop(signal.SIGTERM)
    assert status == 0, running.stderr
    assert "Traceback" not in running.stderr
    _assert_nothing_left(running.data_dir)


# -- a start that fails: one line naming the variable or file, nothing left ---------------------


def _assert_one_line_error(result: subprocess.CompletedProcess, *names: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("EMBEDDING_DIMENSION", "7"),
        ("LOG_FORMAT", "xml"),
        ("TASKS_INTERVAL_S", "-1"),
        ("DB_POOL_MAX_SIZE", "zero"),
        ("MODEL_PLUGINS", "no.such.plugin"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_nothing_starts(variable, value):
    data_dir = _data_dir()
    result = _run(data_dir, "-m", "infra.local.stack", "serve", **{variable: value})
    _assert_one_line_error(result, variable if variable != "MODEL_PLUGINS" else value)
    assert not (data_dir / "pg").exists()
    _assert_nothing_left(data_dir, within_s=0)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"name": "Broken", "bio": [', "invalid JSON"),
        ('{"bio": "no name", "unknown": 1}', "name"),
        (None, "cannot read"),
    ],
    ids=["invalid JSON", "not a character", "missing file"],
)
def test_a_bad_character_file_is_one_line_naming_the_file_and_field_and_nothing_starts(tmp_path, content, field):
    path = tmp_path / "bad.character.json"
    if content is not None:
        path.write_text(content)
    data_dir = _data_dir()
    result = _run(data_dir, "-m", "infra.local.stack", "serve", CHARACTERS=str(path))
    _assert_one_line_error(result, str(path), field)
    _assert_nothing_left(data_dir, within_s=0)


def test_a_missing_model_file_is_one_line_naming_the_variable():
    data_dir = _data_dir()
    result = _run(
        data_dir,
        "-m",
        "infra.local.stack",
        "serve",
        MODEL_PLUGINS="core.model_providers.local",
        LOCAL_TEXT_MODEL_PATH="/nonexistent/model.gguf",
    )
    _assert_one_line_error(result, "LOCAL_TEXT_MODEL_PATH", "/nonexistent/model.gguf")
    _assert_nothing_left(data_dir, within_s=0)


def test_a_port_in_use_is_one_line_naming_port_and_nothing_is_left():
    data_dir = _data_dir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(data_dir, "-m", "infra.local.stack", "serve", PORT=str(port))
    _assert_one_line_error(result, "PORT", str(port), "in use")
    _assert_nothing_left(data_dir)


def test_a_failure_after_postgres_started_stops_postgres_and_the_watchdog():
    """moto's port taken: the start fails after Postgres and the migrations, and unwinds them."""
    data_dir = _data_dir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _run(data_dir, "-m", "infra.local.stack", "serve", MOTO_PORT=str(taken.getsockname()[1]))
    _assert_one_line_error(result, "MOTO_PORT")
    assert (data_dir / "pg" / "PG_VERSION").exists()  # it had started
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    _assert_nothing_left(data_dir)


def test_an_unreachable_database_url_is_one_line_without_the_password():
    data_dir = _data_dir()
    result = _run(
        data_dir,
        "-m",
        "infra.local.stack",
        "serve",
        DATABASE_URL="postgresql://bob:s3cret@127.0.0.1:9/agents?connect_timeout=3",
    )
    line = _assert_one_line_error(result, "cannot connect", "127.0.0.1:9")
    assert "s3cret" not in line
    _assert_nothing_left(data_dir)


def test_a_second_stack_on_the_same_data_is_refused_in_one_line(stack):
    result = _run(stack.data_dir, "-m", "infra.local.stack", "serve")
    _assert_one_line_error(result, "already running", str(stack.data_dir), str(stack.state["pid"]))
    assert stack.proc.poll() is None


# -- stopping: in order, no traceback, nothing left; kill -9: the watchdog cleans up ------------


def test_kill_9_leaves_nothing_running_and_the_next_start_on_the_same_data_works():
    data_dir = _data_dir()
    first = Stack(data_dir)
    assert any("postgres" in p for p in _leftovers(data_dir))  # the check can see Postgres
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    _assert_nothing_left(data_dir)
    assert not (data_dir / "stack.json").exists()  # the watchdog removed it
    assert "stopped its Postgres" in first.stderr

    second = Stack(data_dir)  # same data: no stale postmaster.pid, lock or state in the way
    with psycopg.connect(second.state["database_url"]) as conn:
        assert conn.execute("SELECT count(*) FROM agents").fetchone()[0] >= 1  # the first run's data
    _signal_a_thread_other_than_main(second.proc.pid, signal.SIGINT)  # Ctrl-C, caught by any of its threads
    assert second.proc.wait(15) == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert second.stderr.rstrip().endswith("stopped")
    _assert_nothing_left(data_dir)
    assert not (data_dir / "stack.json").exists()


def _signal_a_thread_other_than_main(pid: int, sig: signal.Signals) -> None:
    """tgkill(2) to one of the process's other threads: the kernel may deliver a process's signal to any thread."""
    import ctypes

    tid = next(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir() if int(t.name) != pid)
    sys_tgkill = 234  # x86_64
    assert ctypes.CDLL(None, use_errno=True).syscall(sys_tgkill, pid, tid, int(sig)) == 0


def test_the_watchdog_terminates_a_child_process_the_stack_left_behind(tmp_path):
    """A stand-in for a child (the local text model's): the stack is killed, the child must not outlive it."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys, time, os, signal\n"
        "from infra.local.watchdog import Watchdog\n"
        "Watchdog.start()\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(2.5)\n"  # the watchdog records descendants every second
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == -signal.SIGKILL
    child = int(result.stdout.split()[0])
    deadline = time.monotonic() + GONE_S
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.2)
    assert not _alive(child), "the child outlived the killed stack"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_dismissed_watchdog_exits_and_cleans_nothing(tmp_path):
    from infra.local.watchdog import Watchdog

    (tmp_path / "stack.json").write_text("{}")
    watchdog = Watchdog.start()
    watchdog.guard_state(tmp_path)
    watchdog.dismiss()
    assert not _alive(watchdog.pid)
    assert (tmp_path / "stack.json").exists()
    watchdog.dismiss()  # twice is fine


# -- the CLI finds the running stack, or says none runs --------------------------------------------


def test_the_cli_finds_the_running_stack_from_another_directory_and_queues_embeddings(stack, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text("The lighthouse keeper painted the door ultramarine in 1911.")
    result = _run(
        stack.data_dir,
        "-m",
        "infra.cli",
        "documents",
        "import",
        "eliza",
        str(folder),
        "--json",
        cwd=tmp_path,
        PYTHONPATH=str(ROOT),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["embeddingQueue"] is True and summary["queued"] == summary["fragments"] >= 1
    deadline = time.monotonic() + 30  # the stack's poller embeds them: they went to its queues
    query = (
        "SELECT count(*), count(e.memory_id) FROM memories m LEFT JOIN embeddings e ON e.memory_id = m.id"
        " WHERE m.type = 'knowledge' AND m.content->>'text' LIKE '%ultramarine%'"
    )
    with psycopg.connect(stack.state["database_url"], autocommit=True) as conn:
        while time.monotonic() < deadline:
            fragments, embedded = conn.execute(query).fetchone()
            if fragments and embedded == fragments:
                break
            time.sleep(0.3)
    assert fragments >= 1 and embedded == fragments, "the imported fragments were not embedded by the stack"


def test_migrate_uses_the_running_stack_and_starts_no_second_postgres(stack):
    result = _run(stack.data_dir, "-m", "infra.cli", "migrate", cwd=Path("/tmp"), PYTHONPATH=str(ROOT))
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    postmasters = [p for p in _leftovers(stack.data_dir) if " -D " in p and "postgres" in p]
    assert len(postmasters) == 1, postmasters


def test_without_a_stack_the_cli_says_so_in_one_line_and_starts_no_postgres(tmp_path):
    data_dir = _data_dir()
    for argv in (["agents", "list"], ["documents", "import", "eliza", str(tmp_path)], ["chat", "eliza"]):
        result = _run(data_dir, "-m", "infra.cli", *argv, cwd=tmp_path, PYTHONPATH=str(ROOT))
        assert result.returncode == 1, (argv, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: no local stack is running on {data_dir}")
        assert "make run" in result.stderr
    assert not (data_dir / "pg").exists()
    _assert_nothing_left(data_dir, within_s=0)


def test_migrate_without_a_stack_starts_its_postgres_and_stops_it_after():
    data_dir = _data_dir()
    result = _run(data_dir, "-m", "infra.cli", "migrate", cwd=Path("/tmp"), PYTHONPATH=str(ROOT))
    assert result.returncode == 0, result.stderr
    assert "applied 0001_core.sql" in result.stdout
    _assert_nothing_left(data_dir)
    assert not (data_dir / "pg" / "postmaster.pid").exists()


# -- logs -----------------------------------------------------------------------------------------


def test_logs_are_json_lines_when_not_on_a_terminal(stack):
    import httpx

    from infra.local.dev_tokens import DevTokens

    token = DevTokens(stack.data_dir).mint("log-reader")
    httpx.post(
        f"{stack.state['gateway_url']}/agents/eliza/messages",
        json={"text": "hi"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    lines = [line for line in stack.stdout.splitlines() if line.strip()]
    assert any(json.loads(line)["service"] == "agent-messages" for line in lines), stack.stdout[-2000:]
    for line in lines:
        record = json.loads(line)
        assert {"level", "message", "service"} <= record.keys()
