-- ferrymq schema, version 2: a publish no longer rewrites its topic's row, which cost
-- one more page in the WAL per commit.
-- ferrymq_topics.folded_messages counts the committed messages whose ids are at most
-- ferrymq_counted.through_id. Those above it are counted from ferrymq_messages when
-- stats asks (an id range), and folded into the topic rows by the publish whose id is a
-- multiple of 1,024, so that range stays short.
-- The column is renamed, not reused: a process of an older ferrymq that had the file
-- open before this migration then fails its next publish or stats ("no such column")
-- instead of adding to a count that now means something else.
ALTER TABLE ferrymq_topics RENAME COLUMN messages TO folded_messages;
CREATE TABLE ferrymq_counted (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    through_id INTEGER NOT NULL
);
-- Version 1 kept the counts exact, so everything published so far is counted.
INSERT INTO ferrymq_counted (id, through_id)
    SELECT 1, coalesce(max(id), 0) FROM ferrymq_messages;
