"""The local text model's child process: llama.cpp behind a pipe, one request at a time.

``core.model_providers.local_text`` starts it as ``python -m core.model_providers.local_worker``
with the model's path and thread count in the environment. Native code runs here, so a
crash inside llama.cpp (a SIGSEGV on an instruction the CPU refuses, as on issue 17's fresh
machine) kills this process and costs one request, never the API process.

Protocol: one JSON object per line (``json.dumps`` escapes newlines). The parent writes to
our stdin, we write to a private copy of our stdout; fd 1 itself is pointed at stderr so that
anything native code prints cannot corrupt the protocol.

- We send ``{"event": "ready", "load_ms": float, "warm_up_ms": float}`` once the model is
  loaded and has generated one token (``warm_up``), or
  ``{"event": "error", "kind": "load", "message": str}`` and exit 1.
- Parent sends ``{"op": "chat", "messages": [...], "max_tokens": int, "temperature": float,
  "repeat_penalty": float, "stop": [str] | null}``; we answer ``{"event": "started"}`` at
  once (so the parent can tell a child that was already dead from one that died while
  generating), then ``{"event": "chunk", "text": str}`` per piece of text as llama.cpp
  writes it, then ``{"event": "done", "cancelled": bool}``, or
  ``{"event": "error", "kind": "request", "message": str}`` when llama.cpp raised (the
  process stays up).
- Parent sends ``{"op": "tokenize", "text": str}`` or ``{"op": "detokenize", "tokens": [int]}``
  (TEXT_TOKENIZER_ENCODE / _DECODE with the model's own vocabulary); we answer ``started``,
  then ``{"event": "result", "value": [int] | str}``, or ``error`` as for a chat.
- Parent sends ``{"op": "cancel"}`` during a generation to stop it early (Ctrl-C in
  ``agent chat``); we answer ``done`` with ``cancelled: true``. A late cancel is ignored.

Lifetime: we exit when our stdin reaches end of file (the parent closed the pipe or died),
also in the middle of a generation, and the kernel kills us when the parent dies
(``PR_SET_PDEATHSIG``), so ``kill -9`` of the stack leaves no model process behind.
Prompt hygiene: the texts of the model's control tokens are broken in every message before
the chat template is applied (``special_token_texts``), so a user cannot write a turn of
their own (``<|im_start|>system``).

SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and the parent
decides what a Ctrl-C means (cancel a reply, stop the stack), not us.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sys
import time
from typing import Any

from core.messaging.prompt_data import break_special_tokens

#: Environment variables the parent sets for us.
MODEL_PATH_ENV = "LOCAL_WORKER_MODEL_PATH"
THREADS_ENV = "LOCAL_WORKER_THREADS"
PARENT_PID_ENV = "LOCAL_WORKER_PARENT_PID"
#: Context window given to llama.cpp (tokens); SmolLM2 was trained with 2,048... 8,192.
CONTEXT_TOKENS = 2048
#: ``prctl`` option (linux/prctl.h).
PR_SET_PDEATHSIG = 1


class LineReader:
    """Lines from a pipe's file descriptor, with a timeout and a non-blocking check.

    Raw ``os.read`` with our own buffer, because a buffered file object hides what it has
    read ahead from ``poll``. Used on both sides of the pipe.

    Args:
        fd: A readable file descriptor (blocking).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.eof = False
        self._buffer = bytearray()
        self._poll = select.poll()  # not select.select: a server may hold fds above FD_SETSIZE
        self._poll.register(fd, select.POLLIN)

    def readline(self, timeout_s: float | None = None) -> bytes | None:
        """The next line, without its newline; ``None`` at end of file.

        Args:
            timeout_s: Most seconds to wait for a whole line (``None``: forever).

        Raises:
            TimeoutError: no whole line within ``timeout_s``.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            if self.eof:
                return None
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._fill(remaining):
                raise TimeoutError(f"no line within {timeout_s} s")

    def has_line(self) -> bool:
        """True when ``readline`` would return at once (a whole line is buffered, or end of file)."""
        while b"\n" not in self._buffer and not self.eof and self._fill(0.0):
            pass
        return b"\n" in self._buffer or self.eof

    def _fill(self, timeout_s: float | None) -> bool:
        """Read what the pipe holds; False when nothing came within ``timeout_s``."""
        if timeout_s is not None and not self._poll.poll(int(timeout_s * 1000)):
            return False
        data = os.read(self.fd, 65536)
        if data:
            self._buffer += data
        else:
            self.eof = True
        return True


def write_message(fd: int, message: dict[str, Any]) -> None:
    """Write one protocol line to ``fd``, whole (raises ``BrokenPipeError`` when the reader is gone)."""
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL us when our parent dies; exit now if it already has.

    ``PR_SET_PDEATHSIG`` (Linux ``prctl(2)``) fires when the parent *thread* that forked us
    ends, which is why the parent forks us from a thread that lives as long as it does. The
    ``getppid`` check closes the window between fork and this call. Elsewhere than Linux it
    does nothing: end of file on stdin still ends us.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid and os.getppid() != parent_pid:
        os._exit(0)


def protocol_output() -> int:
    """A private copy of stdout for the protocol; fd 1 then points at stderr (native prints go there)."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    return fd


def load_model(path: str, threads: int | None) -> Any:
    """The llama.cpp model (``llama_cpp.Llama``) with our context window, quiet."""
    from llama_cpp import Llama  # the 'local' extra, in this process only

    return Llama(model_path=path, n_ctx=CONTEXT_TOKENS, n_threads=threads, verbose=False)


def warm_up(model: Any) -> None:
    """Generate one token, so the first request does not pay for the first decode.

    The weights are memory-mapped: the first decode reads them all from disk, and llama.cpp
    allocates its compute buffers. Measured here: 0.1 s on an idle machine, 2-3 s on a busy
    one, which would otherwise be the first user's wait for the first token. A CPU that
    cannot run this build's instructions crashes here, at start-up, rather than on a request.
    """
    model.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    model.reset()


def special_token_texts(model: Any) -> frozenset[str]:
    """The texts of the loaded model's control and user-defined tokens (``<|im_start|>``...).

    llama.cpp's chat completion tokenises the templated prompt with special tokens parsed, so
    such a text inside a message would *be* the control token: ``serve_chat`` breaks them in
    every message before the template is applied. About 20 ms for SmolLM2's 49,152 tokens.
    """
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(model._model.model)
    special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    texts = (
        model.detokenize([token], special=True).decode("utf-8", "replace")
        for token in range(model.n_vocab())
        if llama_cpp.llama_vocab_get_attr(vocab, token) & special
    )
    return frozenset(t for t in texts if len(t) >= 2)


def inert_messages(messages: list[dict[str, Any]], tokens: frozenset[str]) -> list[dict[str, Any]]:
    """``messages`` with the special-token texts in their contents broken (``< |im_start|>``)."""
    return [{**m, "content": break_special_tokens(str(m.get("content") or ""), tokens)} for m in messages]


def serve_chat(
    model: Any, request: dict[str, Any], reader: LineReader, out: int, tokens: frozenset[str] = frozenset()
) -> bool:
    """Generate one reply, streaming chunks; False when the parent is gone (stdin closed).

    Between tokens, a pending line on stdin is read: ``cancel`` stops the generation; end of
    file stops it and ends the process.
    """
    write_message(out, {"event": "started"})
    try:
        stream = model.create_chat_completion(
            messages=inert_messages(request["messages"], tokens),
            max_tokens=int(request["max_tokens"]),
            temperature=float(request["temperature"]),
            repeat_penalty=float(request["repeat_penalty"]),
            stop=request.get("stop") or None,
            stream=True,
        )
        cancelled = False
        for piece in stream:
            text = piece["choices"][0]["delta"].get("content")
            if text:
                write_message(out, {"event": "chunk", "text": text})
            if reader.has_line():
                line = reader.readline()
                if line is None:
                    return False
                if json.loads(line).get("op") == "cancel":
                    cancelled = True
                    break
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:  # llama.cpp's errors, a malformed request
        write_message(out, {"event": "error", "kind": "request", "message": f"{type(exc).__name__}: {exc}"})
        return True
    write_message(out, {"event": "done", "cancelled": cancelled})
    return True


def serve_tokens(model: Any, request: dict[str, Any], out: int) -> None:
    """Answer a ``tokenize`` (text → token ids, no BOS, control-token texts as plain text) or a
    ``detokenize`` (ids → text; bytes that are not UTF-8 replaced) request."""
    write_message(out, {"event": "started"})
    try:
        if request["op"] == "tokenize":
            value: Any = model.tokenize(str(request["text"]).encode(), add_bos=False, special=False)
        else:
            value = model.detokenize([int(t) for t in request["tokens"]]).decode("utf-8", errors="replace")
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        write_message(out, {"event": "error", "kind": "request", "message": f"{type(exc).__name__}: {exc}"})
        return
    write_message(out, {"event": "result", "value": value})


def main() -> int:
    """Load the model, say ready, serve requests until stdin closes. Returns the exit status."""
    die_with_parent(int(os.environ.get(PARENT_PID_ENV) or 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = protocol_output()
    reader = LineReader(0)
    started = time.perf_counter()
    threads = os.environ.get(THREADS_ENV)
    try:
        model = load_model(os.environ[MODEL_PATH_ENV], int(threads) if threads else None)
        loaded = time.perf_counter()
        warm_up(model)
        tokens = special_token_texts(model)
    except Exception as exc:  # whatever the loader raises, the parent gets one readable line
        write_message(out, {"event": "error", "kind": "load", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    write_message(
        out,
        {
            "event": "ready",
            "load_ms": (loaded - started) * 1000.0,
            "warm_up_ms": (time.perf_counter() - loaded) * 1000.0,
        },
    )
    while (line := reader.readline()) is not None:
        request = json.loads(line)
        if request.get("op") in ("tokenize", "detokenize"):
            serve_tokens(model, request, out)
        elif request.get("op") == "chat" and not serve_chat(model, request, reader, out, tokens):
            break
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the parent went away while we wrote: nothing to tell anyone
        os._exit(0)
