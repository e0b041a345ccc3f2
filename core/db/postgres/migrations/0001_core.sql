-- Core schema: agents and what they remember. Applied by `make migrate` / functions/migrate,
-- never on the request path. Every table that holds agent data is keyed by agent_id first:
-- one schema serves many agents and every query is scoped by agent.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE agents (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    character   jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- `{agent}` in the API may be a name, matched case-insensitively: it must be unambiguous.
CREATE UNIQUE INDEX agents_name_ci ON agents (lower(name));

CREATE TABLE entities (
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    names       text[] NOT NULL DEFAULT '{}',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, id)
);

CREATE TABLE worlds (
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    name        text,
    server_id   text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, id)
);

CREATE TABLE rooms (
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    world_id    uuid,
    name        text,
    source      text NOT NULL,
    type        text NOT NULL,
    channel_id  text,
    server_id   text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, id),
    FOREIGN KEY (agent_id, world_id) REFERENCES worlds (agent_id, id) ON DELETE CASCADE
);

CREATE TABLE participants (
    agent_id    uuid NOT NULL,
    room_id     uuid NOT NULL,
    entity_id   uuid NOT NULL,
    room_state  text CHECK (room_state IN ('FOLLOWED', 'MUTED')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, room_id, entity_id),
    FOREIGN KEY (agent_id, room_id) REFERENCES rooms (agent_id, id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id, entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE
);

CREATE TABLE memories (
    id            uuid PRIMARY KEY,
    agent_id      uuid NOT NULL,
    type          text NOT NULL,            -- elizaOS table name: messages, documents, facts...
    room_id       uuid NOT NULL,
    world_id      uuid,
    entity_id     uuid NOT NULL,
    content       jsonb NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}',
    content_hash  text NOT NULL,            -- sha256 of content.text: embedding idempotency key
    "unique"      boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    FOREIGN KEY (agent_id, room_id) REFERENCES rooms (agent_id, id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
);
-- Recent messages of a room, newest first: the hottest query of a turn.
CREATE INDEX memories_room_recent ON memories (agent_id, room_id, type, created_at DESC);

-- Vectors live beside memories so a memory is stored (and answered) before its
-- embedding exists; the SQS worker fills this table later.
CREATE TABLE embeddings (
    memory_id     uuid PRIMARY KEY REFERENCES memories (id) ON DELETE CASCADE,
    agent_id      uuid NOT NULL,
    content_hash  text NOT NULL,            -- hash of the text the vector was computed from
    model         text NOT NULL,
    dim_384       vector(384),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX embeddings_dim_384_hnsw ON embeddings USING hnsw (dim_384 vector_cosine_ops);
CREATE INDEX embeddings_agent ON embeddings (agent_id);
