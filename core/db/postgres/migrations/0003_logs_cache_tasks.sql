-- Logs, cache and tasks (elizaOS `Log`, cache, `Task`), plus the memory indexes that the
-- general memory listing, world/entity reads and unique-insert de-duplication need.
-- Every table is keyed by agent_id and cascades when its agent is deleted.

-- Memories ------------------------------------------------------------------------------------

-- Listing a table newest/oldest first without a room filter; (created_at, id) is the keyset
-- that list_memories pages on, so both are in the index and no page needs a sort.
CREATE INDEX memories_type_keyset ON memories (agent_id, type, created_at DESC, id DESC);
-- World-wide and per-entity reads (get_memories_by_world_id, list_memories filters).
CREATE INDEX memories_world_recent ON memories (agent_id, world_id, type, created_at DESC)
    WHERE world_id IS NOT NULL;
CREATE INDEX memories_entity_recent ON memories (agent_id, entity_id, type, created_at DESC);
-- create_memory(unique=True) looks for the same text (hash) in the same room and table.
CREATE INDEX memories_dedup ON memories (agent_id, room_id, type, content_hash);

-- Logs ----------------------------------------------------------------------------------------

-- An audit trail (model usage, actions, evaluators...). entity_id and room_id are not foreign
-- keys, as in elizaOS: a log outlives the room it was written in, and the agent itself (the
-- entity of most model-usage logs) has no entities row. Logs go when their agent goes.
CREATE TABLE logs (
    id          uuid PRIMARY KEY,
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    entity_id   uuid NOT NULL,
    room_id     uuid,
    type        text NOT NULL,
    body        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logs_agent_recent ON logs (agent_id, created_at DESC, id DESC);
CREATE INDEX logs_agent_type_recent ON logs (agent_id, type, created_at DESC);
CREATE INDEX logs_agent_room_recent ON logs (agent_id, room_id, created_at DESC) WHERE room_id IS NOT NULL;
CREATE INDEX logs_agent_entity_recent ON logs (agent_id, entity_id, created_at DESC);

-- Cache ---------------------------------------------------------------------------------------

-- JSON values by key, per agent. expires_at NULL means "never expires"; reads compare with
-- now() in SQL, so an expired row is invisible before the sweep deletes it.
CREATE TABLE cache (
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    key         text NOT NULL,
    value       jsonb NOT NULL,
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, key)
);
-- The scheduled sweep (delete_expired_cache) reads expired rows across all agents.
CREATE INDEX cache_expires ON cache (expires_at) WHERE expires_at IS NOT NULL;

-- Tasks ---------------------------------------------------------------------------------------

-- elizaOS `Task` plus the durable scheduler's columns. room/world/entity ids are not foreign
-- keys, as in elizaOS (a task may be created for a room that is stored later, or none).
-- next_run_at NULL: never picked by the scheduler (e.g. a task awaiting a user's choice).
CREATE TABLE tasks (
    id                uuid PRIMARY KEY,
    agent_id          uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (name <> ''),
    description       text,
    room_id           uuid,
    world_id          uuid,
    entity_id         uuid,
    tags              text[] NOT NULL DEFAULT '{}',
    metadata          jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'failed')),
    next_run_at       timestamptz,
    lease_owner       text,
    lease_expires_at  timestamptz,
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- A running task always has a lease: that is what lets a sweep reclaim it when its
    -- worker dies (lease_expires_at in the past).
    CONSTRAINT tasks_running_has_lease
        CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
-- Due tasks across all agents: WHERE status = 'pending' AND next_run_at <= now()
-- ORDER BY next_run_at ... FOR UPDATE SKIP LOCKED.
CREATE INDEX tasks_due ON tasks (status, next_run_at) WHERE next_run_at IS NOT NULL;
-- Leases whose worker died: WHERE status = 'running' AND lease_expires_at < now().
CREATE INDEX tasks_lease_expired ON tasks (lease_expires_at) WHERE status = 'running';
-- Per-agent reads (get_tasks, get_tasks_by_name); the leading agent_id serves agent-only reads.
CREATE INDEX tasks_agent_name ON tasks (agent_id, name);
CREATE INDEX tasks_agent_room ON tasks (agent_id, room_id) WHERE room_id IS NOT NULL;
