"""Main job on the embedded default: message round trip and time-to-embedding, over real HTTP.

Starts the local stack in this process (``infra.local.stack``: ``read_config`` then ``start``;
embedded Postgres under a temporary directory, moto SQS, gateway on a free port, poller, local
models), then sends N messages to Eliza as the README's curl does, on one keep-alive
connection. The functions' log lines go to ``functions.log`` in the data directory (stdout
holds the figures). Prints JSON lines: reply latency p50/p90 (ms), time until the user's
message is searchable by its embedding (ms), stack start-up time (s).

Needs the local models (``make install``); without them it says so and exits with status 1.

Run: ``.venv/bin/python bench/local_roundtrip.py [N]`` (default 10).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _report import emit  # bench/_report.py: run as a script, bench/ is on sys.path


def _time_to_searchable(client: httpx.Client, body: dict[str, Any], text: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < 30:
        found = client.post(
            "/agents/eliza/memories/search", json={"query": text, "roomId": body["roomId"], "count": 1}
        ).json()["memories"]
        if found and found[0]["id"] == body["messageId"]:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError("the message never became searchable")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    os.environ["MODEL_PLUGINS"] = "core.model_providers.local"
    os.environ["PORT"] = "0"  # a free port
    from infra.local.logs import configure_logging
    from infra.local.stack import read_config, start
    from infra.local.startup import StartupError
    from infra.local.state import data_dir

    configure_logging()  # as `make run`: the stack's own lines on stderr
    try:
        config = read_config()
    except StartupError as exc:  # the local model files are missing: `make install`
        sys.exit(f"bench/local_roundtrip.py needs the local models: {exc}")
    if not os.environ.get("LOCAL_DATA_DIR"):
        os.environ["LOCAL_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-roundtrip-", dir="/tmp")
    print("starting the local stack...", file=sys.stderr)
    started = time.perf_counter()
    Path(data_dir()).mkdir(parents=True, exist_ok=True)
    saved, functions_log = sys.stdout, open(Path(data_dir()) / "functions.log", "w")  # noqa: SIM115
    sys.stdout = functions_log  # the functions' Powertools loggers write to stdout as it is at their init
    try:
        stack = start(config)
    finally:
        sys.stdout = saved
    emit("stack_start", time.perf_counter() - started, "s")
    from infra.local.dev_tokens import DevTokens

    token = DevTokens(data_dir()).mint("bench-user")  # what `agent token` prints
    client = httpx.Client(base_url=stack.gateway.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    latencies, searchable = [], []
    try:
        room = None
        for i in range(count):
            text = f"Hello, who are you? (message {i})"
            t0 = time.perf_counter()
            payload = {"text": text, **({"roomId": room} if room else {})}
            body = client.post("/agents/eliza/messages", content=json.dumps(payload)).json()
            latencies.append((time.perf_counter() - t0) * 1000)
            room = body["roomId"]
            # Measured from the reply's arrival: the embedding is queued as the turn ends.
            searchable.append(_time_to_searchable(client, body, text) * 1000)
            print(
                f"  {i + 1}/{count}: {latencies[-1]:.0f} ms, searchable after {searchable[-1]:.0f} ms: "
                f"{body['responses'][0]['text'][:60]!r}",
                file=sys.stderr,
            )
    finally:
        client.close()
        stack.stop()
        functions_log.close()
    deciles = statistics.quantiles(latencies, n=10) if len(latencies) > 1 else latencies * 9
    emit("message_roundtrip_p50", statistics.median(latencies), "ms")
    emit("message_roundtrip_p90", deciles[8], "ms")
    emit("embedding_searchable_after_reply_p50", statistics.median(searchable), "ms")
    emit("embedding_searchable_after_reply_max", max(searchable), "ms")


if __name__ == "__main__":
    main()
