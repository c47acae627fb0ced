-- ferrymq schema, version 5: flow control per consumer group.
-- paused: 1 while Queue::pause holds the group; receives claim nothing (messages keep
-- accumulating). Kept in the file so that every process's receive sees it.
-- max_inflight: at most this many deliveries of the group are inflight at once, counted
-- over every process (NULL: no limit). Set by subscribe; a claim counts the group's
-- inflight rows through ferrymq_deliveries_due inside its write transaction.
ALTER TABLE ferrymq_groups ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ferrymq_groups ADD COLUMN max_inflight INTEGER;
