-- Facts (elizaOS table "facts"): memories of type 'facts' whose metadata holds the claim's
-- triple (subject, predicate, object), a confidence in [0, 1] and `factKey`, the SHA-256 of the
-- normalised triple (or of the normalised text when there is no triple), computed by
-- core.memory.facts.fact_key. Facts stay memories so that they are embedded by the same
-- worker, found by the same vector search, and removed with their room.
--
-- One fact per (agent, room, factKey): the reflection evaluator and the facts API insert with
-- ON CONFLICT on this index, so a fact stated again raises the stored confidence in the same
-- statement instead of adding a row, and two concurrent writers of the same fact cannot both
-- insert it. Facts without `factKey` (written by other code) are not constrained: NULLs are
-- distinct in a unique index. Partial: no entry for any other kind of memory.
--
-- The index also serves fact consolidation, which ranks one room's facts: its leading
-- (agent_id, room_id) columns find them without touching the room's messages.
CREATE UNIQUE INDEX memories_fact_key ON memories (agent_id, room_id, (metadata ->> 'factKey'))
    WHERE type = 'facts';
