"""``agent chat AGENT``: a terminal conversation run in-process, replies streamed as they are written.

The model is the scripted one (canned answers), wrapped here in a plugin that streams each
answer in small chunks through ``on_stream_chunk``, as a hosted provider does.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
import pytest

from core.errors import ModelError
from core.messaging.service import MessageResult
from core.model_providers.base import emit, stream_callback
from core.model_providers.scripted import models as scripted_models
from core.orchestrator import Orchestrator
from core.plugin import ModelRegistration, Plugin
from core.server_secret import ServerSecret
from core.types import Content, Memory, ModelType
from core.uuid import create_unique_uuid, string_to_uuid
from infra.cli import main
from infra.cli.chat import ReplyPrinter

STREAMING_MODELS = f"{__name__}:streaming_plugin"
PLAIN_MODELS = "core.model_providers.scripted"


def reply(text: str, actions: str = "REPLY") -> str:
    return f"<response><thought>answer</thought><actions>{actions}</actions><text>{text}</text></response>"


async def _streamed_text(runtime: Any, params: Mapping[str, Any]) -> str:
    """The next scripted answer, delivered to ``on_stream_chunk`` 6 characters at a time."""
    answer = await scripted_models.text(ModelType.TEXT_LARGE, params)
    callback = stream_callback(params)
    for start in range(0, len(answer), 6):
        await emit(callback, answer[start : start + 6])
    return answer


async def _embed(runtime: Any, params: Mapping[str, Any]) -> Any:
    return await scripted_models.embed(params)


#: ``MODEL_PLUGINS=tests.infra.test_cli_chat:streaming_plugin``.
streaming_plugin = Plugin(
    name="streaming-scripted",
    models=(
        ModelRegistration(ModelType.TEXT_LARGE, _streamed_text, 0, frozenset({"structured_output"})),
        ModelRegistration(ModelType.TEXT_EMBEDDING, _embed, 0),
    ),
)


class Terminal(io.StringIO):
    """Output that keeps each write, to see a reply arrive in pieces."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


class Keys(io.StringIO):
    """Input lines, then Ctrl-C (``KeyboardInterrupt``) when they run out."""

    def readline(self, *args: Any) -> str:
        line = super().readline(*args)
        if not line:
            raise KeyboardInterrupt
        return line


@pytest.fixture
def character(database_url, monkeypatch, tmp_path):
    """A configured character (``CHARACTERS``) with a unique name; the database and models set."""
    name = f"Chatty-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "chatty.json"
    path.write_text(json.dumps({"name": name, "bio": ["Talks a lot."], "system": "You are chatty."}))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CHARACTERS", str(path))
    monkeypatch.setenv("MODEL_PLUGINS", STREAMING_MODELS)
    for priority in ("HIGH", "NORMAL", "LOW"):  # no queues: embeddings stay pending
        monkeypatch.delenv(f"EMBEDDINGS_{priority}_QUEUE_URL", raising=False)
    scripted_models.reset()
    yield name
    scripted_models.reset()


def chat(*argv: str, stdin: io.StringIO) -> tuple[int, Terminal, str]:
    out, err = Terminal(), io.StringIO()
    status = main(["chat", *argv], out=out, err=err, stdin=stdin)
    return status, out, err.getvalue()


def stored_messages(database_url: str, agent_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT room_id, entity_id, content->>'text' FROM memories"
            " WHERE agent_id = %s AND type = 'messages' ORDER BY created_at",
            (agent_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_two_line_session_streams_each_reply(character, database_url):
    scripted_models.script(ModelType.TEXT_LARGE, reply("Hello Alice, nice to meet you!"), reply("Fine &amp; you?"))
    status, out, err = chat(character.lower(), "--user", "alice", stdin=io.StringIO("hello there\nhow are you?\n"))
    assert status == 0, err
    prompt = f"alice@{character}> "
    assert out.getvalue() == (
        f"{prompt}hello there\n{character}: Hello Alice, nice to meet you!\n"
        f"{prompt}how are you?\n{character}: Fine & you?\n"
        f"{prompt}\n"
    )
    # streamed: the first reply reached the terminal in pieces, before the turn ended
    first = out.writes.index(f"{character}: ")
    pieces = out.writes[first + 1 : out.writes.index("\n", first)]
    assert len(pieces) > 2 and "".join(pieces) == "Hello Alice, nice to meet you!"
    assert err == f"Chatting with {character} as alice. /exit or Ctrl-D ends.\n"

    agent_id = string_to_uuid(character)
    messages = stored_messages(database_url, agent_id)
    assert [text for _, _, text in messages] == [
        "hello there",
        "Hello Alice, nice to meet you!",
        "how are you?",
        "Fine & you?",
    ]
    alice = create_unique_uuid(agent_id, string_to_uuid("cli-user:alice"))
    # The DM room, keyed by the server's secret (``Orchestrator.dm_room_id``), not derivable from the ids alone.
    dm_room = Orchestrator(None, dm_room_key=ServerSecret(os.environ["SERVER_SECRET"]).key("dm_room")).dm_room_id(  # type: ignore[arg-type]
        agent_id, string_to_uuid("cli-user:alice")
    )
    assert {room for room, _, _ in messages} == {dm_room}
    assert [entity for _, entity, _ in messages] == [alice, agent_id, alice, agent_id]


def test_the_conversation_goes_on_in_the_next_session(character, database_url):
    scripted_models.script(ModelType.TEXT_LARGE, reply("One."), reply("Two."))
    assert chat(character, "--user", "bob", stdin=io.StringIO("first\n"))[0] == 0
    assert chat(character, "--user", "bob", stdin=io.StringIO("second\n"))[0] == 0
    prompt = scripted_models.calls[-1][1]["prompt"]
    assert "first" in prompt and "One." in prompt  # the second session's prompt holds the first's history
    rooms = {room for room, _, _ in stored_messages(database_url, string_to_uuid(character))}
    assert len(rooms) == 1


def test_exit_ends_the_session(character, database_url):
    scripted_models.script(ModelType.TEXT_LARGE, reply("Bye then."))
    status, out, _ = chat(character, "--user", "carol", stdin=io.StringIO("hi\n  \n/exit\nnever sent\n"))
    assert status == 0 and out.getvalue().endswith(f"carol@{character}> /exit\n")
    assert [c for c in scripted_models.calls if c[0] is ModelType.TEXT_LARGE].__len__() == 1
    texts = [text for _, _, text in stored_messages(database_url, string_to_uuid(character))]
    assert texts == ["hi", "Bye then."]  # the blank line was not sent, nor anything after /exit


def test_ctrl_c_ends_cleanly(character):
    scripted_models.script(ModelType.TEXT_LARGE, reply("Still here."))
    status, out, err = chat(character, "--user", "dan", stdin=Keys("hello\n"))
    assert status == 130
    assert f"{character}: Still here.\n" in out.getvalue() and "Traceback" not in err and "KeyboardInterrupt" not in err


def test_ctrl_c_while_the_agent_answers(character, database_url):
    def interrupted(params: Mapping[str, Any]) -> str:
        raise KeyboardInterrupt

    scripted_models.script(ModelType.TEXT_LARGE, interrupted)
    status, _, err = chat(character, "--user", "erin", stdin=io.StringIO("are you there?\n"))
    assert status == 130 and "Traceback" not in err
    assert chat(character, "--user", "erin", stdin=io.StringIO(""))[0] == 0  # the database is fine afterwards


def test_a_model_failure_is_reported_and_the_session_goes_on(character):
    scripted_models.script(ModelType.TEXT_LARGE, ModelError("upstream 500", provider="scripted"), reply("Back."))
    status, out, err = chat(character, "--user", "fay", stdin=io.StringIO("one\ntwo\n"))
    assert status == 0
    assert "error: the model failed: upstream 500\n" in err
    assert f"{character}: Back.\n" in out.getvalue()


def test_a_model_that_does_not_stream_prints_the_reply_once(character, monkeypatch):
    monkeypatch.setenv("MODEL_PLUGINS", PLAIN_MODELS)
    scripted_models.script(ModelType.TEXT_LARGE, reply("All at once."), reply("", actions="IGNORE"))
    status, out, _ = chat(character, "--user", "gus", stdin=io.StringIO("hi\nignore me\n"))
    assert status == 0
    assert out.getvalue() == (
        f"gus@{character}> hi\n{character}: All at once.\n"
        f"gus@{character}> ignore me\n({character} did not reply)\ngus@{character}> \n"
    )


def test_replies_that_did_not_stream_are_printed_whole():
    """Replies sent by actions (not the model's streamed text) are printed when the turn ends."""
    agent, room = uuid.uuid4(), uuid.uuid4()
    replies = [
        Memory(entity_id=agent, agent_id=agent, room_id=room, content=Content(text=text))
        for text in ("First part.", "", "Second part.")
    ]
    out = Terminal()
    ReplyPrinter(out, "Ada").finish(MessageResult(uuid.uuid4(), room, True, "actions", responses=replies))
    assert out.getvalue() == "Ada: First part.\nAda: Second part.\n"
    streamed = Terminal()
    printer = ReplyPrinter(streamed, "Ada")
    printer.chunk("Hel")
    printer.chunk("lo.")
    printer.finish(MessageResult(uuid.uuid4(), room, True, "simple", responses=replies[:1]))
    assert streamed.writes == ["Ada: ", "Hel", "lo.", "\n"]


def test_an_agent_stored_in_the_database(character, tmp_path):
    name = f"Stored-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "stored.json"
    path.write_text(json.dumps({"name": name, "bio": "Lives in the database."}))
    assert main(["agents", "put", str(path)], out=io.StringIO(), err=io.StringIO()) == 0
    scripted_models.script(ModelType.TEXT_LARGE, reply("From the database."))
    status, out, err = chat(str(string_to_uuid(name)), "--user", "hal", stdin=io.StringIO("who are you?\n"))
    assert status == 0, err
    assert f"{name}: From the database.\n" in out.getvalue()
    assert name in scripted_models.calls[-1][1]["prompt"]  # its own character wrote the prompt


def test_a_shared_room(character, database_url):
    room = uuid.uuid4()
    scripted_models.script(ModelType.TEXT_LARGE, reply("Hi Ivy."), reply("Hi Jo."))
    assert chat(character, "--user", "ivy", "--room-id", str(room), stdin=io.StringIO("I am Ivy\n"))[0] == 0
    assert chat(character, "--user", "jo", "--room-id", str(room), stdin=io.StringIO("I am Jo\n"))[0] == 0
    messages = stored_messages(database_url, string_to_uuid(character))
    assert {r for r, _, _ in messages} == {room} and len({e for _, e, _ in messages}) == 3  # ivy, jo, the agent


def test_unknown_agent(character):
    status, out, err = chat("nobody-at-all", stdin=io.StringIO("hello\n"))
    assert (status, out.getvalue()) == (1, "") and err == "error: no agent 'nobody-at-all' (see `agent agents list`)\n"


def test_an_invalid_stored_character(character, database_url):
    agent_id, name = uuid.uuid4(), f"Broken-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, name, character) VALUES (%s, %s, %s)",
            (agent_id, name, json.dumps({"name": name, "bio": 5})),
        )
    status, _, err = chat(name, stdin=io.StringIO("hello\n"))
    assert status == 1 and err.startswith(f"error: the stored character is invalid: agent {name}: bio:")


def test_an_invalid_characters_setting(character, monkeypatch, tmp_path):
    monkeypatch.setenv("CHARACTERS", str(tmp_path / "missing.json"))
    status, _, err = chat(character, stdin=io.StringIO("hello\n"))
    assert status == 1 and "missing.json: cannot read file" in err


def test_no_model_for_text(character, monkeypatch):
    monkeypatch.setenv("MODEL_PLUGINS", "core.model_providers.nope")
    status, _, err = chat(character, stdin=io.StringIO("hello\n"))
    assert status == 1 and err.startswith("error: plugin 'core.model_providers.nope': cannot import")


@pytest.mark.local_models
def test_the_local_model_streams_its_reply_to_the_terminal_token_by_token(character, monkeypatch):
    """``agent chat`` on the embedded default (SmolLM2 in its own process): the reply reaches the terminal in
    pieces as they are generated, not in one write at the end of the turn."""
    monkeypatch.setenv("MODEL_PLUGINS", "core.model_providers.local")
    status, out, err = chat(character, "--user", "hana", stdin=io.StringIO("Hello, who are you?\n"))
    assert status == 0, err
    assert "error" not in err
    first = out.writes.index(f"{character}: ")  # written alone only when the reply streams
    pieces = out.writes[first + 1 : out.writes.index("\n", first)]
    assert len(pieces) > 2, pieces
    assert "".join(pieces).strip() and "".join(pieces) == "".join(pieces).strip()
