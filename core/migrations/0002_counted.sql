-- ferrymq schema, version 2: a publish no longer rewrites its topic's row, which cost
-- one more page in the WAL per commit.
-- ferrymq_topics.messages now counts the committed messages whose ids are at most
-- ferrymq_counted.through_id. Those above it are counted from ferrymq_messages when
-- stats asks (an id range), and folded into the topic rows by the publish whose id is a
-- multiple of 1,024, so that range stays short.
CREATE TABLE ferrymq_counted (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    through_id INTEGER NOT NULL
);
-- Version 1 kept the counts exact, so everything published so far is counted.
INSERT INTO ferrymq_counted (id, through_id)
    SELECT 1, coalesce(max(id), 0) FROM ferrymq_messages;
