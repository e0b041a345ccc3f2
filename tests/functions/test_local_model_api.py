"""The messages function on the real local models (``MODEL_PLUGINS=core.model_providers.local``):
a crash of the text model's process costs that request a 502, and the next request is served.

The handler module is imported a second time, under its own name, with the local models
configured: the session's ``messages_fn`` runs the scripted models.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from core.model_providers import local_text
from tests.factories import FakeContext, http_event

pytestmark = pytest.mark.local_models

MESSAGES_MODULE = Path(__file__).resolve().parents[2] / "functions" / "api" / "app.py"


@pytest.fixture(scope="module")
def local_messages_fn(function_env) -> Iterator[ModuleType]:
    """``functions/api/app.py`` imported (init phase) with the local models, as ``make run`` serves it."""
    saved = os.environ.get("MODEL_PLUGINS")
    os.environ["MODEL_PLUGINS"] = "core.model_providers.local"
    try:
        spec = importlib.util.spec_from_file_location("messages_on_local_models", MESSAGES_MODULE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ["MODEL_PLUGINS"] = saved if saved is not None else "core.model_providers.scripted"
    yield module
    module.container.close()


def call(fn: ModuleType, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    response = fn.handler(http_event(method, path, body), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def kill_the_model_once_it_generates(timeout_s: float = 60.0) -> tuple[threading.Thread, list[int]]:
    """A thread that SIGKILLs the text model's process as soon as it is generating; the pid it killed."""
    killed: list[int] = []

    def watch() -> None:
        model = local_text.get_model()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid = model.pid
            if model.generating and pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


def test_a_model_process_crash_mid_reply_is_a_502_json_error_and_the_next_request_is_served(local_messages_fn):
    user = str(uuid.uuid4())
    watcher, killed = kill_the_model_once_it_generates()
    status, body = call(
        local_messages_fn,
        "POST",
        "/agents/eliza/messages",
        {"text": "Hello, who are you? Tell me a long story.", "entityId": user},
    )
    watcher.join()
    assert killed, "the model never started generating"
    assert status == 502, body
    assert body["error"] == "model_error" and "your message was stored" in body["message"]

    status, body = call(
        local_messages_fn, "POST", "/agents/eliza/messages", {"text": "Are you there?", "entityId": user}
    )
    assert status == 200, body
    assert body["didRespond"] is True and body["responses"][0]["text"]
    assert local_text.get_model().pid not in (None, killed[0])

    status, history = call(local_messages_fn, "GET", f"/agents/eliza/rooms/{body['roomId']}/messages")
    texts = [m["content"]["text"] for m in history["messages"]]
    assert texts[:2] == ["Hello, who are you? Tell me a long story.", "Are you there?"]  # the first was kept
    assert texts[2] == body["responses"][0]["text"]


def test_a_model_process_killed_between_requests_costs_no_request(local_messages_fn):
    model = local_text.get_model()
    model.start()
    os.kill(model.pid, signal.SIGKILL)
    status, body = call(
        local_messages_fn, "POST", "/agents/eliza/messages", {"text": "Hi!", "entityId": str(uuid.uuid4())}
    )
    assert status == 200 and body["responses"][0]["text"]
