"""Resident memory of the deployed messages function over many turns, against its floors.

The function (``functions.api.app``) runs in a child process as Lambda runs it: imported once
(init phase, ``AWS_LAMBDA_FUNCTION_NAME`` set), then invoked with real API Gateway HTTP API
events (``POST /agents/eliza/messages``) on an embedded Postgres, with moto's SQS server as
the embedding queues (each turn sends its ``SendMessageBatch``) and the scripted model (the
deployed function calls a hosted model over the network: no model lives in its memory).

Floors measured in the same run, each in its own fresh process: the bare interpreter, and
the interpreter with boto3 imported and one SQS client made (what any Python function that
sends to SQS holds), and the same client from botocore alone (what ``core.aws`` loads).
Figures (MiB, from ``/proc/<pid>/status`` VmRSS): RSS after the init
phase, after the first turn, half-way and at the end, the growth over the second half (flat:
about 0), and the end RSS over each floor.

Variants, each in its own child process of the same run (``rss_<variant>_*`` figures), so a
change is measured against what it replaced:

* ``boto3_session``: the AWS clients made from a boto3 session, as ``core.aws`` made them
  before it used botocore's (``import boto3`` loads s3transfer and boto3's own modules).
* ``eager_cipher``: cryptography's AES-GCM made in the init phase, as ``SecretBox`` made it
  before it made it on first use.
* ``state_cache_released``: each turn's entry of the agent's state cache dropped when the turn
  ends, which the message turn does not do (the cache keeps the provider results, with the
  room's recent messages, of the last ``STATE_CACHE_SIZE`` messages after their turns ended).

(``MALLOC_ARENA_MAX=2``, tried as a variant beside ``state_cache_released``, bought nothing:
73.1 MiB at the end against 73.0.)

Run: ``.venv/bin/python bench/memory_rss.py [turns] [--no-variants]`` (default 1000 turns).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
#: What a bare process and an SQS-sending one hold: the floors of the same run.
FLOORS = {
    "interpreter": "pass",
    "boto3_sqs_client": "import boto3; boto3.client('sqs')",
    "botocore_sqs_client": "import botocore.session; botocore.session.get_session().create_client('sqs')",
}


def rss_mib() -> float:
    """This process's resident set (VmRSS), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


#: What-if variants of the child (module docstring), by name.
VARIANTS = ("boto3_session", "eager_cipher", "state_cache_released")


def _boto3_session_clients() -> None:
    """``core.aws`` as it was: every client from one boto3 session."""
    import boto3

    from core import aws

    session = boto3.session.Session()
    aws.AwsClients.client = lambda self, service_name, **kwargs: session.client(service_name, **kwargs)


def child(turns: int, variant: str | None = None) -> None:
    """The measured process: init the function, run ``turns`` turns, print RSS samples as JSON."""
    samples: dict[str, float] = {}
    if variant == "boto3_session":
        _boto3_session_clients()
    if variant == "eager_cipher":
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        AESGCM(b"\0" * 32)
    import functions.api.app as app  # the init phase

    samples["after_init"] = rss_mib()
    sys.path.insert(0, str(ROOT))  # tests.factories: the real API Gateway event
    from tests.factories import FakeContext, http_event

    room = None
    for i in range(turns):
        body = {"text": f"turn {i}: how are you today?", **({"roomId": room} if room else {})}
        response = app.handler(http_event("POST", "/agents/eliza/messages", body), FakeContext())
        if response["statusCode"] != 200:
            raise RuntimeError(f"turn {i}: {response['statusCode']} {response.get('body')}")
        room = json.loads(response["body"])["roomId"]
        if variant == "state_cache_released":
            blueprint = app.orchestrator.get_agent("eliza")
            for message_id in list(blueprint.state_cache._entries):
                blueprint.state_cache._entries.pop(message_id)
        if i == 0:
            samples["after_first_turn"] = rss_mib()
        if i + 1 == turns // 2:
            samples["half_way"] = rss_mib()
    samples["end"] = rss_mib()
    app.container.close()
    print(json.dumps(samples), flush=True)


def run_child(env: dict[str, str], args: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def floor(env: dict[str, str], code: str) -> float:
    """RSS (MiB) of a fresh interpreter after running ``code``."""
    status = "[l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1]"
    probe = f"{code}\nprint({status})"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    if "--child" in sys.argv:
        variant = sys.argv[sys.argv.index("--variant") + 1] if "--variant" in sys.argv else None
        child(int(sys.argv[sys.argv.index("--child") + 1]), variant)
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    turns = int(args[0]) if args else 1000
    variants = () if "--no-variants" in sys.argv else VARIANTS
    import boto3

    from core.db.migrations import migrate
    from core.model_providers.scripted import SCRIPTED_REPLY_ENV
    from infra.local.postgres import start_embedded_postgres
    from infra.local.sqs import create_embedding_queues, start_moto_server

    log("starting embedded Postgres and moto's SQS server...")
    server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="bench-rss-", dir="/tmp")) / "pg")
    sqs = start_moto_server()
    try:
        server.create_database("bench")
        url = server.database_url("bench")
        migrate(url)
        client = boto3.client(
            "sqs", endpoint_url=sqs.endpoint_url, region_name="us-east-1", aws_access_key_id="local",
            aws_secret_access_key="local",
        )  # fmt: skip
        queues = create_embedding_queues(client, prefix="bench-rss")
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "AWS_ENDPOINT_URL_SQS": sqs.endpoint_url,
            **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": u for p, u in queues.items()},
            "MODEL_PLUGINS": "core.model_providers.scripted",
            SCRIPTED_REPLY_ENV: "Noted.",  # one fixed answer: the scripted model keeps no call log
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as template.yaml's Globals set it
            "SERVER_SECRET": "b" * 64,  # a deployment's own secret (any 32+ characters here)
            "AWS_LAMBDA_FUNCTION_NAME": "memory-rss-bench",  # set by Lambda: the init phase's rules
        }
        floors = {name: floor(env, code) for name, code in FLOORS.items()}
        log(f"floors: {', '.join(f'{n} {v:.1f} MiB' for n, v in floors.items())}; {turns} turns...")
        started = time.perf_counter()
        samples = run_child(env, ["--child", str(turns)])
        log(f"done in {time.perf_counter() - started:.0f} s: " + ", ".join(f"{k} {v:.1f}" for k, v in samples.items()))
        others = {}
        for variant in variants:
            others[variant] = run_child(env, ["--child", str(turns), "--variant", variant])
            log(f"{variant}: " + ", ".join(f"{k} {v:.1f}" for k, v in others[variant].items()))
    finally:
        sqs.stop()
        server.stop()
    for name, value in floors.items():
        emit(f"rss_floor_{name}", value, "MiB")
    for name, value in samples.items():
        emit(f"rss_{name}", value, "MiB")
    emit("rss_growth_second_half", samples["end"] - samples["half_way"], "MiB")
    for name, value in floors.items():
        emit(f"rss_end_over_{name}", samples["end"] / value, "x")
    for variant, figures in others.items():
        for name, value in figures.items():
            emit(f"rss_{variant}_{name}", value, "MiB")
        emit(f"rss_{variant}_growth_second_half", figures["end"] - figures["half_way"], "MiB")
        emit(f"rss_end_minus_{variant}_end", samples["end"] - figures["end"], "MiB")
        emit(f"rss_after_init_minus_{variant}_after_init", samples["after_init"] - figures["after_init"], "MiB")


if __name__ == "__main__":
    main()
