-- ferrymq schema, version 1. Every table is prefixed `ferrymq_` because business tables
-- live in the same file (the transactional outbox).
-- Times are integer milliseconds since the Unix epoch.

-- messages: committed messages of the topic kept in the file (kept by the writers, so
-- stats never count a growing table).
CREATE TABLE ferrymq_topics (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    messages INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE ferrymq_groups (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    topic_id     INTEGER NOT NULL,
    tag_filter   TEXT NOT NULL,
    retry_policy TEXT NOT NULL,
    lease_ms     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

-- One row per tag of a group's filter ('*' for every tag), so that publish finds the
-- matching groups with one indexed lookup.
CREATE TABLE ferrymq_subscriptions (
    topic_id INTEGER NOT NULL,
    tag      TEXT NOT NULL,
    group_id INTEGER NOT NULL,
    PRIMARY KEY (topic_id, tag, group_id)
) WITHOUT ROWID;

-- state: 0 committed, 1 half (prepared, invisible), 2 rolled back (kept for audit).
-- Ids are never reused: purge_acked always keeps the newest message.
CREATE TABLE ferrymq_messages (
    id             INTEGER PRIMARY KEY,
    topic_id       INTEGER NOT NULL,
    state          INTEGER NOT NULL,
    tag            TEXT,
    key            TEXT,
    headers        TEXT,
    ordering_group TEXT,
    payload        BLOB NOT NULL,
    published_at   INTEGER NOT NULL,
    deliver_at     INTEGER NOT NULL,
    check_at       INTEGER,
    check_count    INTEGER NOT NULL DEFAULT 0,
    check_token    INTEGER
);
-- Partial: a publish without a key writes one B-tree fewer.
CREATE INDEX ferrymq_messages_topic_key ON ferrymq_messages (topic_id, key)
    WHERE key IS NOT NULL;
-- Half and rolled-back messages only: check-back claims, half counts, listings.
CREATE INDEX ferrymq_messages_undecided ON ferrymq_messages (state, topic_id, check_at)
    WHERE state <> 0;

-- One row per (message, consumer group).
-- state: 0 pending, 1 inflight, 2 acked, 3 dead, 4 blocked (an ordered message waiting
-- for its predecessor). due_at means: pending - deliverable from; inflight - lease end;
-- acked - acked at; dead - died at; blocked - deliver_at of the message.
CREATE TABLE ferrymq_deliveries (
    message_id     INTEGER NOT NULL,
    group_id       INTEGER NOT NULL,
    state          INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    attempt        INTEGER NOT NULL DEFAULT 0,
    lease_token    INTEGER,
    claimed_at     INTEGER,
    last_error     TEXT,
    ordering_group TEXT,
    PRIMARY KEY (message_id, group_id)
) WITHOUT ROWID;
CREATE INDEX ferrymq_deliveries_due ON ferrymq_deliveries (group_id, state, due_at);
CREATE INDEX ferrymq_deliveries_ordering ON ferrymq_deliveries (group_id, ordering_group, state)
    WHERE ordering_group IS NOT NULL;

-- Failed attempts only (nacked or lease expired); the running or successful attempt is
-- read from ferrymq_deliveries.
CREATE TABLE ferrymq_attempts (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    group_id   INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    error      TEXT
);
CREATE INDEX ferrymq_attempts_delivery ON ferrymq_attempts (message_id, group_id);

CREATE TABLE ferrymq_idempotency (
    topic_id   INTEGER NOT NULL,
    idem_key   TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (topic_id, idem_key)
) WITHOUT ROWID;
CREATE INDEX ferrymq_idempotency_expiry ON ferrymq_idempotency (expires_at);

-- Check-backs of half messages.
CREATE TABLE ferrymq_checks (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    resolution TEXT NOT NULL,
    error      TEXT
);
CREATE INDEX ferrymq_checks_message ON ferrymq_checks (message_id);
