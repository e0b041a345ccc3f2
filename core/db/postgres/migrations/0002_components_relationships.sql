-- Components (typed data attached to an entity) and relationships (entity -> entity ties),
-- elizaOS `Component` and `Relationship`. Both hang off entities of one agent, so the
-- foreign keys carry agent_id: a row can never point at another agent's entity, room or
-- world, and deleting an agent, entity, room or world removes what hangs off it.

CREATE TABLE components (
    agent_id          uuid NOT NULL,
    id                uuid NOT NULL,
    entity_id         uuid NOT NULL,
    room_id           uuid,
    world_id          uuid,
    source_entity_id  uuid,                 -- who asserted the data (e.g. the agent, an admin)
    type              text NOT NULL,
    data              jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, id),
    FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id, entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE,
    -- MATCH SIMPLE (the default): a NULL room/world/source leaves the key unchecked.
    FOREIGN KEY (agent_id, room_id) REFERENCES rooms (agent_id, id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id, world_id) REFERENCES worlds (agent_id, id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id, source_entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE
);
-- get_component / get_components: by entity, then type.
CREATE INDEX components_entity_type ON components (agent_id, entity_id, type);

CREATE TABLE relationships (
    agent_id             uuid NOT NULL,
    id                   uuid NOT NULL,
    source_entity_id     uuid NOT NULL,
    target_entity_id     uuid NOT NULL,
    tags                 text[] NOT NULL DEFAULT '{}',
    metadata             jsonb NOT NULL DEFAULT '{}',
    strength             double precision NOT NULL DEFAULT 0 CHECK (strength >= 0 AND strength <= 1),
    interaction_count    integer NOT NULL DEFAULT 0 CHECK (interaction_count >= 0),
    last_interaction_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, id),
    -- One row per direction: creating the same pair again updates it (and is the lookup key).
    CONSTRAINT relationships_pair UNIQUE (agent_id, source_entity_id, target_entity_id),
    CONSTRAINT relationships_not_self CHECK (source_entity_id <> target_entity_id),
    FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id, source_entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id, target_entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE
);
-- get_relationships(entity) looks on both sides; the unique key serves the source side.
CREATE INDEX relationships_target ON relationships (agent_id, target_entity_id);

-- Ordered union of two text arrays: `head`'s elements, then `tail`'s that are not in it,
-- each once (first occurrence wins), NULLs dropped. Entity names merge as (new, stored): most
-- recent first; relationship tags as (stored, new).
CREATE FUNCTION text_array_union(head text[], tail text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT ARRAY(
        SELECT v FROM unnest(coalesce(head, '{}') || coalesce(tail, '{}')) WITH ORDINALITY AS t(v, i)
        WHERE v IS NOT NULL GROUP BY v ORDER BY min(i)
    )
$fn$;

-- Metadata keyed by source (`{"discord": {...}, "api": {...}}`) merged one level deep: per
-- top-level key, two objects merge (`newer` wins on shared inner keys); anything else is
-- replaced by `newer`'s value; keys only in `older` stay.
CREATE FUNCTION jsonb_merge_per_key(older jsonb, newer jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(older, '{}') || coalesce((
        SELECT jsonb_object_agg(
            n.key,
            CASE WHEN jsonb_typeof(older -> n.key) = 'object' AND jsonb_typeof(n.value) = 'object'
                 THEN (older -> n.key) || n.value ELSE n.value END)
        FROM jsonb_each(coalesce(newer, '{}')) AS n
    ), '{}')
$fn$;
