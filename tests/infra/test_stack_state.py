"""How processes find the local stack: its data directory, its lock and its stack.json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.state import (
    PROJECT_ROOT,
    DataDirLock,
    StackBusy,
    StackState,
    data_dir,
    is_locked,
    remove_state,
    running_stack,
)

ROOT = Path(__file__).resolve().parents[2]


def _state(pid: int) -> StackState:
    return StackState(
        pid=pid,
        database_url="postgresql://postgres:@/agents?host=/d",
        sqs_endpoint="http://127.0.0.1:9",
        queue_urls={"high": "http://q/h", "normal": "http://q/n", "low": "http://q/l"},
        gateway_url="http://127.0.0.1:3000",
    )


def test_the_default_data_directory_is_the_projects_whatever_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("LOCAL_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_dir() == PROJECT_ROOT / ".data" == ROOT / ".data"


def test_local_data_dir_overrides_it_relative_to_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOCAL_DATA_DIR", "here")
    assert data_dir() == tmp_path / "here"


def test_the_state_round_trips_and_gives_the_environment_of_the_stack(tmp_path):
    state = _state(123)
    state.write(tmp_path)
    assert StackState.read(tmp_path) == state
    assert state.environment() == {
        "DATABASE_URL": state.database_url,
        "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9",
        "EMBEDDINGS_HIGH_QUEUE_URL": "http://q/h",
        "EMBEDDINGS_NORMAL_QUEUE_URL": "http://q/n",
        "EMBEDDINGS_LOW_QUEUE_URL": "http://q/l",
    }
    remove_state(tmp_path)
    remove_state(tmp_path)  # twice is fine
    assert StackState.read(tmp_path) is None


@pytest.mark.parametrize("content", ["{not json", '{"pid": 1}', '["a list"]'])
def test_an_unreadable_state_file_counts_as_none(tmp_path, content):
    (tmp_path / "stack.json").write_text(content)
    assert StackState.read(tmp_path) is None


def test_a_state_file_without_the_lock_is_stale_and_ignored(tmp_path):
    _state(os.getpid()).write(tmp_path)  # a live pid, but nobody holds the directory
    assert running_stack(tmp_path) is None


def test_a_locked_directory_with_a_live_stack_is_found(tmp_path):
    lock = DataDirLock(tmp_path).acquire()
    try:
        _state(os.getpid()).write(tmp_path)
        assert running_stack(tmp_path) == _state(os.getpid())
        with pytest.raises(StackBusy, match="already running"):
            DataDirLock(tmp_path).acquire()
    finally:
        lock.release()
    assert not is_locked(tmp_path)


def test_a_locked_directory_whose_stack_died_is_busy_not_running(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = DataDirLock(tmp_path).acquire()
    try:
        _state(int(dead.stdout)).write(tmp_path)
        with pytest.raises(StackBusy, match="starting or stopping"):
            running_stack(tmp_path)
    finally:
        lock.release()


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom infra.local.state import DataDirLock\n"
            f"DataDirLock(__import__('pathlib').Path({str(tmp_path)!r})).acquire()\n"
            "print('locked', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    assert is_locked(tmp_path)
    holder.kill()
    holder.wait()
    assert not is_locked(tmp_path)
    DataDirLock(tmp_path).acquire(wait_s=0).release()


def test_acquire_waits_for_the_lock_then_gives_up(tmp_path):
    lock = DataDirLock(tmp_path).acquire()
    try:
        with pytest.raises(StackBusy):
            DataDirLock(tmp_path).acquire(wait_s=0.3)
    finally:
        lock.release()
