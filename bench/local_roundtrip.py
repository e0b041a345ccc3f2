"""Main job on the embedded default: message round trip and time-to-embedding, over real HTTP.

Starts the local stack in this process (embedded Postgres under a temporary directory, moto
SQS, gateway, poller, local models), then sends N messages to Eliza as the README's curl
does. Prints JSON lines: reply latency p50/p90 (ms), time until the user's message is
searchable by its embedding (ms), stack start-up time (s).

Run: ``.venv/bin/python bench/local_roundtrip.py [N]`` (default 10).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time

import httpx
from _report import emit  # bench/_report.py: run as a script, bench/ is on sys.path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _time_to_searchable(url: str, body: dict, text: str, auth: dict[str, str]) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < 30:
        found = httpx.post(
            f"{url}/agents/eliza/memories/search",
            json={"query": text, "roomId": body["roomId"], "count": 1},
            headers=auth,
        ).json()["memories"]
        if found and found[0]["id"] == body["messageId"]:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError("the message never became searchable")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    os.environ.setdefault("LOCAL_DATA_DIR", tempfile.mkdtemp(prefix="bench-roundtrip-", dir="/tmp"))
    os.environ["MODEL_PLUGINS"] = "core.model_providers.local"
    from infra.local.stack import start

    print("starting the local stack...", file=sys.stderr)
    started = time.perf_counter()
    stack = start(_free_port())
    emit("stack_start", time.perf_counter() - started, "s")
    url = stack.gateway.url
    from infra.local.dev_tokens import DevTokens
    from infra.local.state import data_dir

    auth = {"Authorization": f"Bearer {DevTokens(data_dir()).mint('bench-user')}"}  # what `agent token` prints
    latencies, searchable = [], []
    try:
        room = None
        for i in range(count):
            text = f"Hello, who are you? (message {i})"
            t0 = time.perf_counter()
            payload = {"text": text, **({"roomId": room} if room else {})}
            body = httpx.post(
                f"{url}/agents/eliza/messages", content=json.dumps(payload), headers=auth, timeout=60
            ).json()
            latencies.append((time.perf_counter() - t0) * 1000)
            room = body["roomId"]
            # Measured from the reply's arrival: the embedding is queued as the turn ends.
            searchable.append(_time_to_searchable(url, body, text, auth) * 1000)
            print(
                f"  {i + 1}/{count}: {latencies[-1]:.0f} ms, searchable after {searchable[-1]:.0f} ms: "
                f"{body['responses'][0]['text'][:60]!r}",
                file=sys.stderr,
            )
    finally:
        stack.stop()
    deciles = statistics.quantiles(latencies, n=10) if len(latencies) > 1 else latencies * 9
    emit("message_roundtrip_p50", statistics.median(latencies), "ms")
    emit("message_roundtrip_p90", deciles[8], "ms")
    emit("embedding_searchable_after_reply_p50", statistics.median(searchable), "ms")
    emit("embedding_searchable_after_reply_max", max(searchable), "ms")


if __name__ == "__main__":
    main()
