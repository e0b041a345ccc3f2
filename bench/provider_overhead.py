"""Per-call overhead of our provider clients against the official SDKs, on the same responses.

A tiny HTTP/1.1 server (asyncio, keep-alive, in its own process so it never competes with
the client for the GIL) on 127.0.0.1 answers every request with a recorded provider
response from ``tests/data/providers``: OpenAI chat (JSON and SSE), OpenAI embeddings
(base64, two inputs), Anthropic messages (JSON and SSE). Each case is called by our handler
(``core.model_providers.openai`` / ``anthropic``, as the model registry calls it: model
resolution, key lookup, circuit breaker, retries wrapper, usage accounting with metrics
disabled, no database) and by the official SDK (``openai.AsyncOpenAI``,
``anthropic.AsyncAnthropic``, default settings), in alternating rounds so drift hits both.
The server's time is the same for both, so the difference is the client's overhead.

Prints JSON lines per case: ours and the SDK's mean and p50 per call (µs), and the ratio
ours / SDK (target: <= 1); then what the usage metric (EMF) adds per call when enabled.
Run: ``.venv/bin/python bench/provider_overhead.py [--quick]``.
Needs the ``dev`` extra (``openai``, ``anthropic``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

#: The tests' recorded responses (``tests.data.PROVIDERS``), by path: the server process imports
#: this module before ``main`` puts the repo root on ``sys.path``.
DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "providers"
MESSAGES = [{"role": "system", "content": "You are a potato."}, {"role": "user", "content": "Who are you?"}]


# -- the server -----------------------------------------------------------------------------


def _responses() -> dict[tuple[str, bool], tuple[bytes, str]]:
    def read(name: str) -> bytes:
        return (DATA / name).read_bytes()

    return {
        ("/v1/chat/completions", False): (
            read("openai/chat_completions.nonstream.text.response.json"),
            "application/json",
        ),
        ("/v1/chat/completions", True): (
            read("openai/chat_completions.stream.text.response.sse"),
            "text/event-stream; charset=utf-8",
        ),
        ("/v1/embeddings", False): (read("openai/embeddings.batch.response.json"), "application/json"),
        ("/v1/messages", False): (read("anthropic/messages.nonstream.text.response.json"), "application/json"),
        ("/v1/messages", True): (read("anthropic/sdk_fixture.basic_response.sse"), "text/event-stream; charset=utf-8"),
    }


def serve(port_queue: multiprocessing.Queue) -> None:
    responses = _responses()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?")[0]
                length = next(
                    (int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0
                )
                body = await reader.readexactly(length) if length else b""
                stream = b'"stream":true' in body.replace(b" ", b"")
                content, ctype = responses.get(
                    (path, stream), (b'{"error":{"message":"no route"}}', "application/json")
                )
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: "
                    + ctype.encode()
                    + b"\r\ncontent-length: "
                    + str(len(content)).encode()
                    + b"\r\nconnection: keep-alive\r\n\r\n"
                    + content
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


# -- the clients ----------------------------------------------------------------------------


def our_cases(base: str):
    os.environ.update(
        {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"{base}/v1",
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "ANTHROPIC_BASE_URL": base,
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    from core.model_providers import anthropic as our_anthropic
    from core.model_providers import openai as our_openai
    from core.types import ModelType

    def model(plugin, model_type):
        return next(m.handler for m in plugin.models if m.model_type is model_type)

    oa = our_openai.build_plugin()
    an = our_anthropic.build_plugin()
    chat, embed, messages = (
        model(oa, ModelType.TEXT_LARGE),
        model(oa, ModelType.TEXT_EMBEDDING),
        model(an, ModelType.TEXT_LARGE),
    )
    sink: list[str] = []
    return {
        "openai_chat": lambda: chat(None, {"messages": MESSAGES, "model": "o3-mini"}),
        "openai_chat_stream": lambda: chat(
            None, {"messages": MESSAGES, "model": "gpt-4o-mini", "on_stream_chunk": sink.append}
        ),
        "openai_embeddings_batch": lambda: embed(None, {"texts": ["hello", "world"]}),
        "anthropic_messages": lambda: messages(None, {"messages": MESSAGES, "max_tokens": 1024}),
        "anthropic_messages_stream": lambda: messages(
            None, {"messages": MESSAGES, "max_tokens": 1024, "on_stream_chunk": sink.append}
        ),
    }


def sdk_cases(base: str):
    import anthropic
    import openai

    oa = openai.AsyncOpenAI(api_key="sk-bench", base_url=f"{base}/v1")
    an = anthropic.AsyncAnthropic(api_key="sk-ant-bench", base_url=base)
    anthropic_messages = [MESSAGES[1]]

    async def chat_stream() -> str:
        parts = []
        async for chunk in await oa.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    async def chat() -> str:
        return (await oa.chat.completions.create(model="o3-mini", messages=MESSAGES)).choices[0].message.content

    async def embed() -> list:
        return [
            d.embedding
            for d in (await oa.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])).data
        ]

    async def messages() -> str:
        reply = await an.messages.create(
            model="claude-haiku-4-5", max_tokens=1024, system=MESSAGES[0]["content"], messages=anthropic_messages
        )
        return reply.content[0].text

    async def messages_stream() -> str:
        parts = []
        async for event in await an.messages.create(
            model="claude-haiku-4-5",
            max_tokens=1024,
            system=MESSAGES[0]["content"],
            messages=anthropic_messages,
            stream=True,
        ):
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
        return "".join(parts)

    return {
        "openai_chat": chat,
        "openai_chat_stream": chat_stream,
        "openai_embeddings_batch": embed,
        "anthropic_messages": messages,
        "anthropic_messages_stream": messages_stream,
    }


async def timed(call, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def run(base: str, rounds: int, per_round: int) -> None:
    ours, sdk = our_cases(base), sdk_cases(base)
    for name in ours:
        a, b = await ours[name](), await sdk[name]()  # warm-up and a sanity check: same answer
        if a != b:
            raise SystemExit(f"{name}: our answer differs from the SDK's: {str(a)[:80]!r} vs {str(b)[:80]!r}")
        await timed(ours[name], per_round)
        await timed(sdk[name], per_round)
        mine: list[float] = []
        theirs: list[float] = []
        for number in range(rounds):
            first, second = (ours, sdk) if number % 2 == 0 else (sdk, ours)
            got_first = await timed(first[name], per_round)
            got_second = await timed(second[name], per_round)
            mine.extend(got_first if first is ours else got_second)
            theirs.extend(got_second if first is ours else got_first)
        emit(f"{name}_ours_mean", statistics.fmean(mine), "us")
        emit(f"{name}_sdk_mean", statistics.fmean(theirs), "us")
        emit(f"{name}_ours_p50", statistics.median(mine), "us")
        emit(f"{name}_sdk_p50", statistics.median(theirs), "us")
        emit(f"{name}_ratio_ours_over_sdk", statistics.median(mine) / statistics.median(theirs), "ratio")
        log(f"{name}: ours p50 {statistics.median(mine):.0f} us, SDK p50 {statistics.median(theirs):.0f} us")


def metrics_cost(count: int) -> None:
    """What the EMF metric adds per call in Lambda (disabled in the comparison above, where
    its output would mix with these lines): built and printed to /dev/null."""
    import contextlib

    from core.model_providers import usage
    from core.types.log import ModelUsageBody

    body = ModelUsageBody(
        model_type="TEXT_LARGE",
        provider="openai",
        model="gpt-4o-mini",
        duration_ms=12.5,
        prompt_tokens=78,
        completion_tokens=9,
    )
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            started = time.perf_counter()
            for _ in range(count):
                usage._emit_metrics(body, 1.2e-5)
            elapsed = time.perf_counter() - started
    finally:
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    emit("usage_metric_emit_mean", elapsed / count * 1e6, "us")


def main() -> None:
    quick = "--quick" in sys.argv
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if not DATA.is_dir():
        raise SystemExit(f"recorded responses not found at {DATA}")
    ports: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=10)}"
        log(f"server at {base}")
        asyncio.run(run(base, rounds=4 if quick else 10, per_round=50 if quick else 200))
        metrics_cost(500 if quick else 5000)
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
