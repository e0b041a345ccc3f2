"""The local text model's child process: crashes, hangs and deaths cost one call, never the caller's process.

Real SmolLM2 on llama.cpp in a real child process; the faults are real signals.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core.errors import ConfigurationError, ModelError
from core.model_providers import local, local_text
from core.model_providers.local_text import LocalTextModel, model_path

pytestmark = pytest.mark.local_models

HELLO = [
    {"role": "system", "content": "You are Eliza, a friendly AI. Answer in one sentence."},
    {"role": "user", "content": "Hello, who are you?"},
]
#: A reply long enough to be interrupted after its first chunk.
STORY = [{"role": "user", "content": "Tell me a long story about a dragon and a knight."}]


@pytest.fixture(scope="module")
def model():
    started = LocalTextModel(model_path(), timeout_s=30.0)
    started.start()
    yield started
    started.close()


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


async def test_killing_the_process_mid_reply_fails_that_call_and_the_next_call_gets_a_new_process(model):
    first_pid = model.pid
    chunks: list[str] = []

    def kill_on_first_chunk(text: str) -> None:
        if not chunks:
            os.kill(first_pid, signal.SIGKILL)
        chunks.append(text)

    with pytest.raises(ModelError, match="died while generating.*SIGKILL") as failure:
        await model.chat_async(STORY, max_tokens=200, on_chunk=kill_on_first_chunk)
    assert failure.value.provider == "local" and failure.value.retryable
    assert chunks  # it had started streaming

    reply = await model.chat_async(HELLO, max_tokens=60, repeat_penalty=1.3)
    assert len(reply.split()) >= 2
    assert model.pid not in (None, first_pid) and wait_gone(first_pid)


async def test_a_process_killed_while_idle_is_replaced_without_the_caller_noticing(model):
    idle_pid = model.pid
    os.kill(idle_pid, signal.SIGKILL)
    reply = await model.chat_async(HELLO, max_tokens=60, repeat_penalty=1.3)
    assert len(reply.split()) >= 2 and model.pid not in (None, idle_pid)


async def test_a_process_that_dies_before_reading_the_request_is_replaced_and_the_request_sent_again(model):
    """The child still runs when the request is written, then dies without reading it (the idle test's race)."""
    doomed = model.pid
    os.kill(doomed, signal.SIGSTOP)  # alive for poll(), but it will not read the request
    killer = threading.Timer(0.5, os.kill, (doomed, signal.SIGKILL))
    killer.start()
    try:
        reply = await model.chat_async(HELLO, max_tokens=30)
    finally:
        killer.join()
    assert reply and model.pid not in (None, doomed)


async def test_a_generation_past_the_timeout_kills_the_process_and_raises_a_model_error():
    hung = LocalTextModel(model_path(), timeout_s=1.5)
    try:
        hung.start()
        pid = hung.pid

        def freeze(text: str) -> None:
            os.kill(pid, signal.SIGSTOP)  # a hang llama.cpp never returns from

        started = time.monotonic()
        with pytest.raises(ModelError, match="did not finish within 1.5 s"):
            await hung.chat_async(STORY, max_tokens=200, on_chunk=freeze)
        assert 1.4 < time.monotonic() - started < 5.0
        assert wait_gone(pid)
        hung.timeout_s = 60.0  # the machine may be busy: only the first call is meant to time out
        reply = await hung.chat_async(HELLO, max_tokens=30)  # a fresh process, started in the background
        assert reply and hung.pid != pid
    finally:
        hung.close()


async def test_a_cancelled_call_stops_the_generation_and_keeps_the_process(model):
    pid = model.pid
    chunks: list[str] = []
    task = asyncio.ensure_future(model.chat_async(STORY, max_tokens=400, on_chunk=chunks.append))
    while not chunks:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    reply = await model.chat_async(HELLO, max_tokens=30)
    assert reply and model.pid == pid
    assert time.monotonic() - started < 10  # it did not wait for the 400 tokens


async def test_an_error_inside_llama_cpp_fails_the_call_and_keeps_the_process(model):
    pid = model.pid
    too_long = [{"role": "user", "content": "word " * 5000}]  # over the 2,048-token context
    with pytest.raises(ModelError, match="local text model failed") as failure:
        await model.chat_async(too_long, max_tokens=10)
    assert failure.value.provider == "local"
    assert model.pid == pid and await model.chat_async(HELLO, max_tokens=20)


def test_the_blocking_chat_streams_on_the_model_thread_and_returns_the_joined_chunks(model):
    chunks: list[str] = []
    reply = model.chat(HELLO, max_tokens=40, repeat_penalty=1.3, on_chunk=chunks.append)
    assert len(chunks) > 1 and "".join(chunks) == reply


def test_closing_ends_the_process_through_its_pipe_and_the_model_starts_no_other():
    closing = LocalTextModel(model_path())
    closing.start()
    process = closing._process
    closing.close()
    assert process.returncode == 0  # it saw end of file and exited: not killed
    assert closing.pid is None
    with pytest.raises(ModelError, match="closed"):
        closing.chat(HELLO, max_tokens=5)


async def test_closing_during_a_reply_fails_that_call_with_a_model_error_and_leaves_no_process():
    closing = LocalTextModel(model_path())
    closing.start()
    pid = closing.pid

    def close_on_first_chunk(text: str) -> None:
        closing.close()

    with pytest.raises(ModelError, match="died while generating"):
        await closing.chat_async(STORY, max_tokens=400, on_chunk=close_on_first_chunk)
    assert wait_gone(pid) and closing.pid is None


@pytest.fixture
def fresh_global_model(monkeypatch):
    """``local_text.get_model()`` builds a new model for the test (and the old one comes back after)."""
    monkeypatch.setattr(local_text, "_process_model", local_text._ProcessModel())
    yield
    if local_text._process_model._model is not None:
        local_text._process_model._model.close()


def test_a_missing_model_file_fails_preload_with_a_configuration_error_naming_the_path(
    fresh_global_model, monkeypatch, tmp_path
):
    missing = tmp_path / "nowhere" / "model.gguf"
    monkeypatch.setenv("LOCAL_TEXT_MODEL_PATH", str(missing))
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=f"{missing}.*does not exist"):
        local.preload()
    assert time.monotonic() - started < 5  # a clear error, not a hang


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("directory", "is not a regular file"),
        ("fifo", "is not a regular file"),  # reading it would block start-up forever
        ("unreadable", "cannot read the local text model file"),
        (b"not a model at all", "is not a GGUF file"),
        (b"GGUF" + b"\x00" * 64, "cannot load the local text model"),  # llama.cpp refuses it, in the child
    ],
)
def test_an_unusable_model_file_fails_preload_with_a_configuration_error_naming_the_path(
    fresh_global_model, monkeypatch, tmp_path, content, error
):
    path = tmp_path / "model.gguf"
    if content == "directory":
        path.mkdir()
    elif content == "fifo":
        os.mkfifo(path)
    elif content == "unreadable":
        path.write_bytes(b"GGUF")
        path.chmod(0)
        if os.access(path, os.R_OK):  # root reads anything: a file it may not read is one that fails to open
            path.unlink()
            path.symlink_to(path)  # a symlink loop: ELOOP when opened
    else:
        path.write_bytes(content)
    monkeypatch.setenv("LOCAL_TEXT_MODEL_PATH", str(path))
    with pytest.raises(ConfigurationError, match=error) as failure:
        local.preload()
    assert str(path) in str(failure.value)


def test_a_process_that_dies_while_loading_fails_preload_with_a_configuration_error(fresh_global_model):
    """A llama.cpp built for another CPU dies at load or warm-up (SIGILL, SIGSEGV): a start-up error, not a hang."""
    model = local_text.get_model()
    killer = threading.Thread(target=kill_when_started, args=(model, signal.SIGSEGV))
    killer.start()
    with pytest.raises(ConfigurationError, match="died while loading.*killed by SIGSEGV.*another CPU"):
        local.preload()
    killer.join()


def test_a_process_that_hangs_while_loading_fails_start_after_the_start_timeout():
    model = LocalTextModel(model_path(), start_timeout_s=1.0)
    killer = threading.Thread(target=kill_when_started, args=(model, signal.SIGSTOP))
    killer.start()
    try:
        started = time.monotonic()
        with pytest.raises(ModelError, match="did not load .* within 1 s .LOCAL_TEXT_START_TIMEOUT_S"):
            model.start()
        assert time.monotonic() - started < 5
        killer.join()
        assert model.pid is None
    finally:
        model.close()


def kill_when_started(model: LocalTextModel, sig: int) -> None:
    """Send ``sig`` to the model's process as soon as there is one (it is then loading)."""
    deadline = time.monotonic() + 10
    while model.pid is None and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(model.pid, sig)


async def test_a_model_that_cannot_start_fails_the_call_with_a_model_error(fresh_global_model, monkeypatch, tmp_path):
    """At call time (no preload), the missing file is a 502-able ModelError, not a 500."""
    monkeypatch.setenv("LOCAL_TEXT_MODEL_PATH", str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match="missing.gguf"):
        await local_text.generate_text(None, {"prompt": "hi"})


@pytest.mark.parametrize("name", ["LOCAL_TEXT_TIMEOUT_S", "LOCAL_TEXT_START_TIMEOUT_S"])
@pytest.mark.parametrize("value", ["soon", "0", "-3", "inf"])
def test_a_bad_timeout_setting_is_a_configuration_error_naming_the_variable(
    fresh_global_model, monkeypatch, name, value
):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"{name}: must be"):
        local_text.get_model()


async def test_a_bad_sampling_parameter_is_a_model_error_that_is_not_retried():
    with pytest.raises(ModelError, match="invalid sampling parameter") as failure:
        await local_text.generate_text(None, {"prompt": "hi", "max_tokens": "many"})
    assert not failure.value.retryable


PARENT = textwrap.dedent("""
    import os, signal, sys, time
    from core.model_providers.local_text import LocalTextModel, model_path
    model = LocalTextModel(model_path())
    model.start()
    if sys.argv[1] == "stopped":
        os.kill(model.pid, signal.SIGSTOP)  # it cannot read the end of file: only PR_SET_PDEATHSIG can end it
    print(model.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("child_state", ["idle", "stopped"])
def test_the_model_process_dies_with_its_parent_killed_by_sigkill(child_state):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, child_state],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(local_text.__file__).parents[2],
    )
    try:
        child_pid = int(parent.stdout.readline())
        assert not gone(child_pid)
        parent.kill()
        parent.wait()
        assert wait_gone(child_pid), f"model process {child_pid} outlived its parent"
    finally:
        parent.kill()
        parent.wait()


EXITING = textwrap.dedent("""
    import sys, threading
    from core.model_providers.local_text import get_model
    model = get_model()
    print(model.chat([{"role": "user", "content": "Hi"}], max_tokens=5) and model.pid, flush=True)
    if sys.argv[1] == "mid-reply":  # the main thread ends while the model thread streams a reply
        started = threading.Event()

        def reply():
            try:
                model.chat([{"role": "user", "content": "Tell me a long story."}], max_tokens=400,
                           on_chunk=lambda _: started.set())
            except Exception as exc:  # the caller in flight at shutdown gets the ModelError; printed if not
                print("the caller in flight failed:", exc, file=sys.stderr)

        threading.Thread(target=reply, daemon=True).start()
        started.wait(30)
""")


@pytest.mark.parametrize("when", ["idle", "mid-reply"])
def test_a_process_that_exits_stops_its_model_process_without_a_traceback(when):
    done = subprocess.run(
        [sys.executable, "-c", EXITING, when],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(local_text.__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    assert wait_gone(int(done.stdout.split()[0]), within_s=3.0)


def test_ctrl_c_in_the_terminal_does_not_kill_the_model_process(model):
    """SIGINT reaches the whole foreground process group; the parent decides what Ctrl-C means."""
    pid = model.pid
    os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    assert not gone(pid) and model.chat(HELLO, max_tokens=10) and model.pid == pid
