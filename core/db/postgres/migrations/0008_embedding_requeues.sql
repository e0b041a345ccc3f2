-- What the embedding sweep queued again, so that it converges instead of piling up
-- (core/tasks/housekeeping.py).
--
-- Without it the sweep re-queued every memory still without a vector at every run: during an
-- outage or a backlog the same memory was sent again each minute while its first request was
-- still in the queue (duplicates piling up), and a text the model refuses was sent forever, the
-- oldest first, filling each run's limit so that newer memories waited behind it.
--
-- One row per memory the sweep has queued: the text queued (content_hash: an edited memory
-- starts again from zero), how many times, when last, and when the sweep gave up on it. The
-- sweep queues a memory again only once the queues' visibility timeout has passed since the
-- last time, at most EMBEDDING_MAX_REQUEUES times; then it marks the row failed and never
-- looks at it again. Rows exist only for memories that needed the sweep, so the table stays
-- small; they go with their memory.
CREATE TABLE embedding_requeues (
    memory_id     uuid PRIMARY KEY REFERENCES memories (id) ON DELETE CASCADE,
    content_hash  text NOT NULL,
    attempts      integer NOT NULL CHECK (attempts > 0),
    queued_at     timestamptz NOT NULL,
    failed_at     timestamptz
);
