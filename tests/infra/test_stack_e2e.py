"""The main job, end to end, as a user runs it: the local stack in its own process, real local
models, real HTTP. The same path as ``make run`` followed by the README's curl."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from infra.local.dev_tokens import DevTokens

pytestmark = pytest.mark.local_models
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack():
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="agent-runtime-e2e-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "EMBEDDINGS_", "AWS_ENDPOINT"))}
    env.update({"PORT": str(port), "LOCAL_DATA_DIR": str(data_dir), "MODEL_PLUGINS": "core.model_providers.local"})
    log = (data_dir / "stack.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"stack exited early:\n{(data_dir / 'stack.log').read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"stack not ready:\n{(data_dir / 'stack.log').read_text()}")
    yield url, proc, data_dir
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _auth(data_dir: Path, name: str = "e2e-user") -> dict[str, str]:
    """What `agent token` prints, as the README's curl sends it."""
    return {"Authorization": f"Bearer {DevTokens(data_dir).mint(name, name=name)}"}


def test_message_reply_history_embedding_and_search(stack):
    url, _, data_dir = stack
    auth = _auth(data_dir)
    started = time.monotonic()
    # No Content-Type header: exactly what the README's curl sends.
    response = httpx.post(
        f"{url}/agents/eliza/messages", content='{"text":"Hello, who are you?"}', headers=auth, timeout=60
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["didRespond"] and body["responses"][0]["text"].strip()
    assert time.monotonic() - started < 30

    history = httpx.get(f"{url}/agents/eliza/rooms/{body['roomId']}/messages", headers=auth).json()["messages"]
    assert [m["id"] for m in history] == [body["messageId"], body["responses"][0]["id"]]

    deadline = time.monotonic() + 15
    found = []
    while time.monotonic() < deadline:
        found = httpx.post(
            f"{url}/agents/eliza/memories/search",
            json={"query": "Hello, who are you?", "roomId": body["roomId"]},
            headers=auth,
        ).json()["memories"]
        if found and found[0]["id"] == body["messageId"]:
            break
        time.sleep(0.3)
    assert found and found[0]["id"] == body["messageId"], found
    assert found[0]["similarity"] > 0.95


def test_bad_requests_through_the_gateway(stack):
    url, _, data_dir = stack
    auth = _auth(data_dir)
    assert httpx.post(f"{url}/agents/eliza/messages", content="{oops", headers=auth).status_code == 400
    missing = httpx.post(f"{url}/agents/eliza/messages", json={}, headers=auth)
    assert missing.status_code == 422 and "text" in missing.json()["message"]
    assert httpx.post(f"{url}/agents/nobody/messages", json={"text": "hi"}, headers=auth).status_code == 404
    assert httpx.post(f"{url}/agents/eliza/messages", json={"text": "x" * 70_000}, headers=auth).status_code == 413


def test_the_gateway_refuses_a_request_without_a_valid_token_as_api_gateway_does(stack):
    url, _, data_dir = stack
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic eDp5"}):
        response = httpx.post(f"{url}/agents/eliza/messages", json={"text": "hi"}, headers=headers)
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert httpx.get(f"{url}/health").status_code == 200  # Authorizer: NONE, as in template.yaml
    other_users_history = httpx.get(f"{url}/agents/eliza/rooms/{uuid.uuid4()}/messages", headers=_auth(data_dir, "x"))
    assert other_users_history.status_code == 404


def test_sigterm_stops_the_stack_and_its_postgres(stack):
    _, proc, data_dir = stack
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not (data_dir / "pg" / "postmaster.pid").exists()
