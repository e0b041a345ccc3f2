"""``agent chat AGENT``: talk to an agent in the terminal; its replies stream as they are written.

The agent runs in this process, as the messages function runs it (same orchestrator, same
database, same models from ``MODEL_PLUGINS``); nothing needs to be served. AGENT is one of
the configured characters (``CHARACTERS``, else Eliza) or any agent stored in the database
(``agent agents put``). Each line read is one message; ``/exit``, end of input (Ctrl-D) or
Ctrl-C ends the session.

The conversation is kept: the same ``--user`` talks in the same direct-message room with
the agent each session (unless ``--room-id`` names another room), so the agent remembers.
Embedding requests for its messages go to the ``EMBEDDINGS_*_QUEUE_URL`` queues when they
are set; otherwise the messages wait for the scheduled sweep, which re-queues them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from core.character import CharacterError, load_character_dict
from core.errors import ModelError, ModelNotFoundError, NotFoundError
from core.uuid import string_to_uuid
from infra.cli.common import CliError, Io, find_agent, interruptible, open_container, uuid_arg

if TYPE_CHECKING:
    from core.blueprint import AgentBlueprint
    from core.deployment.container import Container
    from core.messaging.service import MessageResult
    from core.orchestrator import Orchestrator

T = TypeVar("T")
#: What ends the session when typed alone on a line.
EXIT_COMMANDS = frozenset({"/exit", "/quit"})


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``chat``."""
    parser = groups.add_parser(
        "chat",
        help="talk to an agent in the terminal (replies stream)",
        description="Talk to an agent in the terminal; its replies stream as they are written.",
        epilog="/exit, Ctrl-D or Ctrl-C ends the session.",
    )
    parser.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    parser.add_argument(
        "--room-id", type=uuid_arg, metavar="UUID", help="talk in this room (default: your DM room with the agent)"
    )
    parser.add_argument(
        "--user", help="your name (default: the login name); the same name continues the same conversation"
    )
    parser.set_defaults(handler=chat)


def chat(args: argparse.Namespace, io: Io) -> int:
    """``chat``: a read-reply loop until ``/exit`` or end of input (Ctrl-C is handled by ``main``)."""
    user = (args.user or _login_name()).strip() or "user"
    with open_container(models=True) as container:
        orchestrator = container.orchestrator()  # loads CHARACTERS, registers and starts them, as the stack does
        try:
            blueprint = interruptible(container, _agent(container, orchestrator, args.agent))
            return ChatSession(container, orchestrator, blueprint, io, user=user, room_id=args.room_id).run()
        finally:  # plugins' stop and services, before the pool closes
            container.run(orchestrator.stop_agents())


class ChatSession:
    """One terminal conversation with one agent.

    Args:
        container: The process's container (loop, pool).
        orchestrator: Holds the agent.
        blueprint: The agent.
        io: Where lines come from and replies go.
        user: The user's display name; also what makes their entity id (stable across sessions).
        room_id: The room to talk in (``None``: the user's DM room with the agent).
    """

    def __init__(
        self,
        container: Container,
        orchestrator: Orchestrator,
        blueprint: AgentBlueprint,
        io: Io,
        *,
        user: str,
        room_id: UUID | None = None,
    ) -> None:
        self.container = container
        self.orchestrator = orchestrator
        self.blueprint = blueprint
        self.io = io
        self.user = user
        self.room_id = room_id
        self.name = blueprint.character.name
        self.prompt = f"{user}@{self.name}> "
        self.entity_id = string_to_uuid(f"cli-user:{user}")
        # Typed input is echoed by the terminal; piped input is not, so echo it to keep a readable transcript.
        self._echo = not _isatty(io.stdin)

    def run(self) -> int:
        """Read lines and answer each until ``/exit`` or end of input.

        Returns:
            0.
        """
        print(f"Chatting with {self.name} as {self.user}. /exit or Ctrl-D ends.", file=self.io.err)
        while True:
            line = self._read()
            if line is None:  # end of input: end the prompt's line
                print(file=self.io.out)
                return 0
            text = line.strip()
            if text in EXIT_COMMANDS:
                return 0
            if text:
                self.turn(text)

    def turn(self, text: str) -> MessageResult | None:
        """Send one message and print the reply as it streams.

        A model failure is reported and the session goes on (the message stays stored).

        Returns:
            The turn's result, or ``None`` when the model failed.
        """
        from core.orchestrator import IncomingMessage

        incoming = IncomingMessage(
            text=text, entity_id=self.entity_id, room_id=self.room_id, source="cli", user_name=self.user
        )
        printer = ReplyPrinter(self.io.out, self.name)
        try:
            result = interruptible(
                self.container,
                self.orchestrator.handle_message(self.blueprint.agent_id, incoming, on_stream_chunk=printer.chunk),
            )
        except (ModelError, ModelNotFoundError) as exc:
            printer.end()
            print(f"error: the model failed: {exc}", file=self.io.err)
            return None
        printer.finish(result)
        return result

    def _read(self) -> str | None:
        stdin, out = self.io.stdin, self.io.out
        if stdin is sys.stdin and out is sys.stdout and _isatty(stdin):
            try:
                return input(self.prompt)  # line editing and history (readline)
            except EOFError:
                return None
        out.write(self.prompt)
        out.flush()
        line = stdin.readline()
        if not line:
            return None
        if self._echo:
            out.write(line if line.endswith("\n") else line + "\n")
        return line.rstrip("\n")


class ReplyPrinter:
    """Writes a reply as it streams (``chunk``), or whole at the end when nothing streamed.

    Args:
        out: Where the reply goes.
        name: The agent's name, which starts the reply's line.
    """

    def __init__(self, out: Any, name: str) -> None:
        self.out = out
        self.name = name
        self.streamed = False

    def chunk(self, text: str) -> None:
        """``on_stream_chunk``: write a piece of the reply now."""
        if not self.streamed:
            self.streamed = True
            self.out.write(f"{self.name}: ")
        self.out.write(text)
        self.out.flush()

    def end(self) -> None:
        """End a streamed line (before an error is printed)."""
        if self.streamed:
            self.out.write("\n")
            self.out.flush()

    def finish(self, result: MessageResult) -> None:
        """Close the streamed line, or print the replies the model did not stream (actions' replies)."""
        if self.streamed:
            self.end()
            return
        for reply in result.responses:
            if reply.text:
                print(f"{self.name}: {reply.text}", file=self.out)
        if not any(reply.text for reply in result.responses):
            print(f"({self.name} did not reply)", file=self.out)
        self.out.flush()


async def _agent(container: Container, orchestrator: Orchestrator, ref: str) -> AgentBlueprint:
    """A configured agent, else one stored in the database (added to the orchestrator, not re-stored).

    Raises:
        CliError: no such agent, or its stored character is no longer valid.
    """
    try:
        return orchestrator.get_agent(ref)
    except NotFoundError:
        pass
    record = await find_agent(container.adapter, ref)
    try:
        character = load_character_dict(record.character, source=f"agent {record.name}")
    except CharacterError as exc:
        raise CliError(f"the stored character is invalid: {exc}") from None
    # The row's id is the agent's, whatever the document says (ids derived from names may differ).
    character = character.model_copy(update={"id": record.id})
    await orchestrator.add_agents([character], persist=False, auto_start=True)
    return orchestrator.get_agent(record.id)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment nor the password database
        return "user"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
