"""Write path: memories inserted in batches, then their vectors upserted with the HNSW index in place.

Starts an embedded Postgres under /tmp, applies the migrations, then through
``PostgresAdapter`` (as the handlers and the embedding worker call it):

1. inserts ``--memories`` memories with ``create_memories`` in batches of ``--batch``
   (memories/s);
2. upserts one 384-d vector per memory with ``upsert_embeddings`` in batches of ``--batch``
   into the partitioned, HNSW-indexed ``embeddings`` table (vectors/s), then the same
   vectors again, as an SQS redelivery would (no-op upserts/s).

Round trips are counted, not assumed: the adapter talks to the server through a relay on a
Unix socket that counts the ``Sync`` and ``Query`` protocol messages, the points where the
client waits for the server (a pipeline's statements share one). Reported per call, with the
pool's connection check on checkout (one of them) counted in.

Prints progress to stderr and JSON lines ``{"metric", "value", "unit"}`` to stdout.

Run: ``.venv/bin/python bench/write_path.py [--memories 10000] [--batch 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

DIM = 384


class RoundTripRelay:
    """Relays Unix-socket Postgres connections and counts their round trips.

    A round trip is counted for each ``Sync`` or simple ``Query`` message the client sends:
    those are the points where the server answers ``ReadyForQuery`` and the client waits for
    it (a statement outside a pipeline ends with one; a pipeline sends one only when its
    results are needed). Counting on the wire, not ``execute`` calls, shows what pipelining
    and ``unnest`` really save.

    Args:
        server_socket_dir: Directory of the server's ``.s.PGSQL.<port>`` socket.
        port: The server's port (names the socket file).
    """

    def __init__(self, server_socket_dir: str, port: int) -> None:
        self.target = f"{server_socket_dir}/.s.PGSQL.{port}"
        self.dir = tempfile.mkdtemp(prefix="bench-relay-", dir="/tmp")
        self.port = port
        self.round_trips = 0
        self._server: asyncio.AbstractServer | None = None
        self._relays: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._relay, path=f"{self.dir}/.s.PGSQL.{self.port}")

    async def stop(self) -> None:
        """Stop listening and wait for the relayed connections (close the clients first)."""
        if self._relays:
            await asyncio.wait(self._relays, timeout=5)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._relays.add(asyncio.current_task())
        server_reader, server_writer = await asyncio.open_unix_connection(self.target)

        async def upstream() -> None:
            # The startup packet has no type byte: int32 length, then the payload.
            length = int.from_bytes(await client_reader.readexactly(4))
            server_writer.write(length.to_bytes(4) + await client_reader.readexactly(length - 4))
            while header := await client_reader.read(5):
                header += await client_reader.readexactly(5 - len(header)) if len(header) < 5 else b""
                body = await client_reader.readexactly(int.from_bytes(header[1:]) - 4)
                if header[:1] in (b"S", b"Q"):  # Sync, Query
                    self.round_trips += 1
                server_writer.write(header + body)
                await server_writer.drain()
            server_writer.close()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)

    def url(self, database_url: str) -> str:
        """``database_url`` pointed at the relay instead of the server."""
        parts = urlsplit(database_url)
        query = dict(parse_qsl(parts.query))
        query["host"] = self.dir
        return urlunsplit(parts._replace(query=urlencode(query)))


async def _adapter(url: str):
    from core.db.pool import create_pool
    from core.db.postgres import PostgresAdapter
    from core.settings import Settings

    pool = create_pool(Settings(database_url=url, pool_max_size=1))
    await pool.open()
    return pool, PostgresAdapter(pool, embedding_dimension=DIM)


async def _setup_agent(adapter) -> tuple[uuid.UUID, list[uuid.UUID], uuid.UUID]:
    from core.db.adapter import AgentRecord
    from core.types import ChannelType, Entity, Room, World

    agent = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(agent, f"bench-{agent}", {"name": "bench"})])
    entity, world = uuid.uuid4(), uuid.uuid4()
    rooms = [uuid.uuid4() for _ in range(10)]
    for room in rooms:
        await adapter.ensure_connection(
            Entity(id=entity, agent_id=agent, names=["user"]),
            Room(id=room, agent_id=agent, type=ChannelType.GROUP, world_id=world),
            World(id=world, agent_id=agent, name="bench"),
        )
    return agent, rooms, entity


def _memories(agent: uuid.UUID, rooms: list[uuid.UUID], entity: uuid.UUID, count: int, tag: str) -> list:
    from core.types import Content, Memory

    return [
        Memory(
            agent_id=agent,
            room_id=rooms[i % len(rooms)],
            entity_id=entity,
            content=Content(text=f"{tag} message number {i}"),
        )
        for i in range(count)
    ]


def _rows(memories: list, seed: int) -> list:
    from core.db.adapter import EmbeddingRow

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(memories), DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [EmbeddingRow(m.id, m.agent_id, m.content_hash, "bench", vectors[i]) for i, m in enumerate(memories)]


def _batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def count_round_trips(url: str, port: int, socket_dir: str, batch: int) -> dict[str, float]:
    """Round trips of one ``create_memories`` and one ``upsert_embeddings`` call of ``batch`` rows,
    and of one ``search_memories`` (its transaction, ``SET LOCAL`` and query pipelined)."""
    relay = RoundTripRelay(socket_dir, port)
    await relay.start()
    pool, adapter = await _adapter(relay.url(url))
    try:
        agent, rooms, entity = await _setup_agent(adapter)
        memories = _memories(agent, rooms, entity, batch * 3, "relay")
        counts: dict[str, list[int]] = {"create_memories": [], "upsert_embeddings": [], "search_memories": []}
        for chunk, rows in zip(_batches(memories, batch), _batches(_rows(memories, 1), batch), strict=True):
            for name, call in (
                ("create_memories", lambda c=chunk: adapter.create_memories(c, "messages")),
                ("upsert_embeddings", lambda r=rows: adapter.upsert_embeddings(r)),
                ("search_memories", lambda r=rows: adapter.search_memories(agent, r[0].vector)),
            ):
                before = relay.round_trips
                await call()
                counts[name].append(relay.round_trips - before)
    finally:
        await pool.close()
        await relay.stop()
    return {name: max(values) for name, values in counts.items()}


async def throughput(url: str, total: int, batch: int) -> dict[str, float]:
    """Memories/s of ``create_memories``, then vectors/s of ``upsert_embeddings`` (new, then again)."""
    pool, adapter = await _adapter(url)
    try:
        agent, rooms, entity = await _setup_agent(adapter)
        memories = _memories(agent, rooms, entity, total, "bench")
        started = time.perf_counter()
        for chunk in _batches(memories, batch):
            await adapter.create_memories(chunk, "messages")
        insert_s = time.perf_counter() - started
        log(f"inserted {total} memories in {insert_s:.2f} s")
        rows = _rows(memories, 2)
        results = {"memories_per_s": total / insert_s}
        for name in ("vectors_per_s", "redelivered_vectors_per_s"):
            written, started = 0, time.perf_counter()
            for chunk in _batches(rows, batch):
                written += await adapter.upsert_embeddings(chunk)
            took = time.perf_counter() - started
            log(f"upserted {total} vectors ({written} written) in {took:.2f} s")
            results[name] = total / took
            results[f"{name}_written"] = written
    finally:
        await pool.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    from core.db.migrations import migrate
    from infra.local.postgres import start_embedded_postgres, stop_embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="bench-write-", dir="/tmp")) / "data"
    log(f"starting embedded postgres on {data_dir}...")
    server = start_embedded_postgres(data_dir)
    try:
        server.create_database("bench")
        url = server.database_url("bench")
        migrate(url)
        port = int(dict(parse_qsl(urlsplit(url).query)).get("port", urlsplit(url).port or 5432))
        socket_dir = dict(parse_qsl(urlsplit(url).query))["host"]
        trips = asyncio.run(count_round_trips(url, port, socket_dir, args.batch))
        log(f"round trips per call of {args.batch} rows (pool check included): {trips}")
        emit("create_memories_round_trips_per_batch", trips["create_memories"], "round trips")
        emit("upsert_embeddings_round_trips_per_batch", trips["upsert_embeddings"], "round trips")
        emit("search_memories_round_trips", trips["search_memories"], "round trips")
        result = asyncio.run(throughput(url, args.memories, args.batch))
        emit("create_memories_rate", result["memories_per_s"], "memories/s")
        emit("upsert_embeddings_rate", result["vectors_per_s"], "vectors/s")
        emit("upsert_embeddings_redelivered_rate", result["redelivered_vectors_per_s"], "vectors/s")
        emit("upsert_embeddings_redelivered_written", result["redelivered_vectors_per_s_written"], "rows")
    finally:
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
