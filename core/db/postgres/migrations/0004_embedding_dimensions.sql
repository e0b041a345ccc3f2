-- Several embedding dimensions in one database, and fast agent-scoped vector search.
--
-- Layout: one `embeddings` row per memory with one nullable column per supported dimension
-- (dim_384, dim_512, dim_768, dim_1024, dim_1536 as `vector`; dim_3072 as `halfvec`, since
-- HNSW indexes `vector` up to 2,000 dimensions and `halfvec` up to 4,000), exactly one of
-- them set, each column with its own HNSW cosine index (HNSW skips NULLs, so a partial
-- `WHERE dim_N IS NOT NULL` index would add nothing but a predicate every query must repeat).
-- Chosen over one table per dimension because, measured, it costs nothing at search time
-- (bench/vector_search.py data, 200,000 384-d rows over 50 agents, agent filter, raw SQL):
-- 384-d top-10 p50 was 1.47 ms with 100,000 1536-d rows sharing the table (vectors over
-- ~2 kB are TOASTed out of line) against 1.40 ms in a 384-only table, recall@10 1.0 in both.
-- And it keeps the model simple: one vector per memory enforced by the primary key and a
-- CHECK, a switch of model rewrites the same row (no stale vector left in another table),
-- and the worker's look-up is one join whatever the dimension.
--
-- Partitioned by HASH (agent_id) into 16: every search is scoped by agent, and a filter that
-- keeps 2% of an HNSW index's rows (one agent of 50) makes the iterative scan visit ~50x
-- more tuples than it returns. Measured on the same data (2-core machine, through the
-- adapter): unpartitioned, p50 6.8-7.4 ms at recall@10 0.97-0.98 whatever hnsw.ef_search
-- (20-100); with 16 partitions (~3 agents per index) p50 2.4-2.8 ms at recall@10 0.99-1.0
-- (raw SQL: 8 partitions 1.6 ms, 16 1.4 ms, 32 1.1 ms). HNSW's defaults (m 16,
-- ef_construction 64) suffice then; ef_search is set per query by the adapter.
--
-- The memory's filter columns (agent_id, type, room_id, world_id, entity_id) are copied here
-- (by upsert_embeddings, and kept in step by a trigger) so a filtered search reads no other
-- table until its top rows are known. Existing 384-d vectors are kept.

-- The old table's indexes are not needed to copy it: drop them first, and free their names.
DROP INDEX embeddings_dim_384_hnsw;
DROP INDEX embeddings_agent;
ALTER TABLE embeddings RENAME TO embeddings_0001;
ALTER INDEX embeddings_pkey RENAME TO embeddings_0001_pkey;

CREATE TABLE embeddings (
    memory_id     uuid NOT NULL,
    agent_id      uuid NOT NULL,
    type          text NOT NULL,            -- copies of the memory's columns, for filters
    room_id       uuid NOT NULL,
    world_id      uuid,
    entity_id     uuid NOT NULL,
    content_hash  text NOT NULL,            -- hash of the text the vector was computed from
    model         text NOT NULL,
    dim_384       vector(384),
    dim_512       vector(512),
    dim_768       vector(768),
    dim_1024      vector(1024),
    dim_1536      vector(1536),
    dim_3072      halfvec(3072),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- A unique key of a partitioned table must contain the partition key; memory_id leads,
    -- so the cascade from memories finds a row by memory_id alone.
    CONSTRAINT embeddings_pkey PRIMARY KEY (memory_id, agent_id),
    CONSTRAINT embeddings_memory_id_fkey FOREIGN KEY (memory_id) REFERENCES memories (id) ON DELETE CASCADE,
    CONSTRAINT embeddings_one_vector
        CHECK (num_nonnulls(dim_384, dim_512, dim_768, dim_1024, dim_1536, dim_3072) = 1)
) PARTITION BY HASH (agent_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE embeddings_p%s PARTITION OF embeddings FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            lpad(i::text, 2, '0'), i);
    END LOOP;
END $$;

INSERT INTO embeddings (memory_id, agent_id, type, room_id, world_id, entity_id, content_hash, model,
                        dim_384, created_at)
SELECT e.memory_id, m.agent_id, m.type, m.room_id, m.world_id, m.entity_id, e.content_hash, e.model,
       e.dim_384, e.created_at
  FROM embeddings_0001 e
  JOIN memories m ON m.id = e.memory_id
 WHERE e.dim_384 IS NOT NULL;

DROP TABLE embeddings_0001;

-- Indexes after the copy: one bulk build is much faster than row-by-row HNSW inserts.
CREATE INDEX embeddings_dim_384_hnsw  ON embeddings USING hnsw (dim_384 vector_cosine_ops);
CREATE INDEX embeddings_dim_512_hnsw  ON embeddings USING hnsw (dim_512 vector_cosine_ops);
CREATE INDEX embeddings_dim_768_hnsw  ON embeddings USING hnsw (dim_768 vector_cosine_ops);
CREATE INDEX embeddings_dim_1024_hnsw ON embeddings USING hnsw (dim_1024 vector_cosine_ops);
CREATE INDEX embeddings_dim_1536_hnsw ON embeddings USING hnsw (dim_1536 vector_cosine_ops);
CREATE INDEX embeddings_dim_3072_hnsw ON embeddings USING hnsw (dim_3072 halfvec_cosine_ops);
-- Selective filters (a room, a rare type) are faster as an exact top-k over these than as an
-- HNSW scan that discards most of what it visits; the planner picks per query.
CREATE INDEX embeddings_agent_room ON embeddings (agent_id, room_id);
CREATE INDEX embeddings_agent_type ON embeddings (agent_id, type);

-- Keep the copied filter columns in step should a memory ever change room, type, world or entity.
CREATE FUNCTION embeddings_follow_memory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE embeddings
       SET agent_id = NEW.agent_id, type = NEW.type, room_id = NEW.room_id,
           world_id = NEW.world_id, entity_id = NEW.entity_id
     WHERE memory_id = NEW.id AND agent_id = OLD.agent_id;
    RETURN NULL;
END $$;

CREATE TRIGGER memories_embeddings_follow
    AFTER UPDATE OF agent_id, type, room_id, world_id, entity_id ON memories
    FOR EACH ROW
    WHEN ((OLD.agent_id, OLD.type, OLD.room_id, OLD.world_id, OLD.entity_id)
          IS DISTINCT FROM (NEW.agent_id, NEW.type, NEW.room_id, NEW.world_id, NEW.entity_id))
    EXECUTE FUNCTION embeddings_follow_memory();
