"""Streamed replies: time to first token and total time, with the local model and with a recorded provider stream.

1. **Local model, the deployed path's local equivalent.** Starts the local stack in this process
   (embedded Postgres under a temporary directory, moto SQS, gateway, SmolLM2 on llama.cpp in a
   child process) and sends N messages to Eliza with ``Accept: text/event-stream`` over real HTTP:
   the messages function posts each chunk through the Management API to the gateway, which writes
   it as a server-sent event (``functions.api.streaming``). Measured per message: time to the first
   ``chunk`` event and to the ``result`` event. Baseline in the same run: the same messages as
   plain JSON (the whole reply at once), whose total is what a client waits without streaming.
2. **A recorded provider stream.** The Anthropic provider decodes the real recorded SSE stream
   ``tests/data/providers/anthropic/messages.stream.text.response.sse`` (through
   ``httpx.MockTransport``: no network); time to the first chunk and total, against the
   recorded non-streamed response through the same handler (baseline). The recording carries no
   timing, so this measures our decoding overhead, not the provider's latency.

Prints JSON lines ``{"metric", "value", "unit"}``; progress on stderr.
Run: ``.venv/bin/python bench/streaming.py [N]`` (default 3: the local model is slow on 2 cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPTS = ("Hello, who are you?", "What do you like to talk about?", "Tell me something about yourself.")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _streamed(url: str, text: str, auth: dict[str, str]) -> tuple[float, float, str, str]:
    """(seconds to the first chunk, seconds to the result, streamed text, stored text)."""
    started = time.perf_counter()
    first, chunks, result = None, [], None
    headers = {**auth, "Accept": "text/event-stream"}
    with httpx.stream("POST", f"{url}/agents/eliza/messages", json={"text": text}, headers=headers, timeout=300) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            frame = json.loads(line[len("data: ") :])
            if frame["type"] == "chunk":
                first = first or time.perf_counter() - started
                chunks.append(frame["text"])
            elif frame["type"] in ("result", "error"):
                result = frame
    total = time.perf_counter() - started
    if result is None or result["type"] != "result":
        raise RuntimeError(f"no result: {result}")
    stored = result["body"]["responses"][0]["text"] if result["body"]["responses"] else ""
    return first if first is not None else total, total, "".join(chunks), stored


def local_model(count: int) -> None:
    os.environ.setdefault("LOCAL_DATA_DIR", tempfile.mkdtemp(prefix="bench-streaming-", dir="/tmp"))
    os.environ["MODEL_PLUGINS"] = "core.model_providers.local"
    from infra.local.dev_tokens import DevTokens
    from infra.local.stack import read_config, start
    from infra.local.state import data_dir

    os.environ["PORT"] = str(_free_port())
    log("starting the local stack (local models)...")
    stack = start(read_config())
    try:
        url = stack.gateway.url
        auth = {"Authorization": f"Bearer {DevTokens(data_dir()).mint('bench-user')}"}
        httpx.post(f"{url}/agents/eliza/messages", json={"text": "warm up"}, headers=auth, timeout=300)
        firsts, totals, plain = [], [], []
        for i in range(count):
            prompt = PROMPTS[i % len(PROMPTS)]
            first, total, streamed, stored = _streamed(url, prompt, auth)
            if streamed.strip() != stored.strip():
                log(f"warning: streamed text differs from the stored reply: {streamed!r} vs {stored!r}")
            firsts.append(first)
            totals.append(total)
            started = time.perf_counter()
            httpx.post(f"{url}/agents/eliza/messages", json={"text": prompt}, headers=auth, timeout=300)
            plain.append(time.perf_counter() - started)
            log(
                f"message {i + 1}/{count}: first chunk {first * 1000:.0f} ms, streamed {total * 1000:.0f} ms,"
                f" JSON {plain[-1] * 1000:.0f} ms"
            )
        emit("local_model_time_to_first_token_p50", statistics.median(firsts) * 1000, "ms")
        emit("local_model_streamed_total_p50", statistics.median(totals) * 1000, "ms")
        emit("local_model_json_total_p50_baseline", statistics.median(plain) * 1000, "ms")
        emit("local_model_first_token_over_json_total", statistics.median(firsts) / statistics.median(plain), "ratio")
    finally:
        stack.stop()


def recorded_provider(rounds: int = 200) -> None:
    from core.model_providers import anthropic
    from core.model_providers.resources import ProviderResources
    from core.settings.providers import ProviderSettings
    from core.types import ModelType
    from tests.core.model_providers.conftest import FakeRuntime
    from tests.data import PROVIDERS

    stream = (PROVIDERS / "anthropic/messages.stream.text.response.sse").read_bytes()
    whole = (PROVIDERS / "anthropic/messages.nonstream.text.response.json").read_bytes()
    settings = {"ANTHROPIC_API_KEY": "sk-ant-api03-bench-0123456789abcdefghij"}

    def route(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, content=whole, headers={"content-type": "application/json"})

    resources = ProviderResources(ProviderSettings(), transport=httpx.MockTransport(route))
    handler = next(
        m.handler for m in anthropic.build_plugin(settings, resources).models if m.model_type is ModelType.TEXT_SMALL
    )
    runtime = FakeRuntime(settings)

    async def run() -> tuple[list[float], list[float], list[float]]:
        firsts, totals, plain = [], [], []
        for _ in range(rounds):
            started, first = time.perf_counter(), []

            def on_chunk(text: str, started: float = started, first: list[float] = first) -> None:
                if not first:
                    first.append(time.perf_counter() - started)

            await handler(runtime, {"prompt": "What is 1+1?", "on_stream_chunk": on_chunk})
            totals.append(time.perf_counter() - started)
            firsts.append(first[0])
            started = time.perf_counter()
            await handler(runtime, {"prompt": "What is the capital of France?"})
            plain.append(time.perf_counter() - started)
        return firsts, totals, plain

    with contextlib.redirect_stdout(io.StringIO()):  # the provider's EMF metric lines: not this bench's output
        firsts, totals, plain = asyncio.run(run())
    emit("recorded_stream_time_to_first_token_p50", statistics.median(firsts) * 1000, "ms")
    emit("recorded_stream_total_p50", statistics.median(totals) * 1000, "ms")
    emit("recorded_json_total_p50_baseline", statistics.median(plain) * 1000, "ms")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    recorded_provider()
    local_model(count)


if __name__ == "__main__":
    main()
