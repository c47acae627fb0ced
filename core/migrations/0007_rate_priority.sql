-- ferrymq schema, version 7: a rate limit per consumer group, and message priority.
--
-- Rate limit (SubscribeOptions::rate / burst): a token bucket in the group's row, so every
-- process's claim takes from the same bucket inside its write transaction.
-- rate: tokens (deliveries) per second, NULL for no limit; burst: the bucket's size;
-- tokens: what was left at tokens_at (ms, the claiming queue's clock). A claim refills
-- the bucket by (now - tokens_at) * rate / 1000, up to burst, and takes one token per
-- delivery it hands out (an expired lease handed out again too).
ALTER TABLE ferrymq_groups ADD COLUMN rate REAL;
ALTER TABLE ferrymq_groups ADD COLUMN burst INTEGER;
ALTER TABLE ferrymq_groups ADD COLUMN tokens REAL;
ALTER TABLE ferrymq_groups ADD COLUMN tokens_at INTEGER;

-- Priority 0 (default) to 9: within a consumer group, ready deliveries of a higher
-- priority are handed out first. Copied into each delivery so that a claim finds them
-- by index. The partial index holds pending deliveries of priority > 0 only: a group
-- that never uses priority pays one empty lookup per claim and writes no entry, and an
-- entry leaves the index when its delivery is claimed (acked and dead ones never stay).
ALTER TABLE ferrymq_messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ferrymq_deliveries ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE INDEX ferrymq_deliveries_priority
    ON ferrymq_deliveries (group_id, priority DESC, due_at) WHERE priority > 0 AND state = 0;

-- The SQL producers' view of migration 0004 again, with a priority column (NULL: 0).
DROP TRIGGER ferrymq_publish_insert;
DROP VIEW ferrymq_publish;

CREATE VIEW ferrymq_publish AS SELECT
    NULL AS topic, NULL AS payload, NULL AS tag, NULL AS key, NULL AS headers,
    NULL AS ordering_key, NULL AS idempotency_key, NULL AS delay_ms, NULL AS deliver_at,
    NULL AS idempotency_window_ms, NULL AS published_at, NULL AS priority
WHERE 0;

CREATE TRIGGER ferrymq_publish_insert INSTEAD OF INSERT ON ferrymq_publish
BEGIN
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: topic name must be 1-249 characters of A-Z a-z 0-9 . _ -')
    WHERE NEW.topic IS NULL OR typeof(NEW.topic) <> 'text' OR length(NEW.topic) NOT BETWEEN 1 AND 249
       OR NEW.topic GLOB '*[^A-Za-z0-9._-]*';
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: payload is required (a BLOB or TEXT)')
    WHERE NEW.payload IS NULL OR typeof(NEW.payload) NOT IN ('blob', 'text');
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: payload is larger than max_payload (4194304 bytes)')
    WHERE length(CAST(NEW.payload AS BLOB)) > 4194304;
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: tag must be 1-128 characters of A-Z a-z 0-9 . _ - : /')
    WHERE NEW.tag IS NOT NULL AND (typeof(NEW.tag) <> 'text' OR length(NEW.tag) NOT BETWEEN 1 AND 128
       OR NEW.tag GLOB '*[^A-Za-z0-9._:/-]*');
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: key, ordering_key and idempotency_key must be text of 1-1024 bytes without NUL')
    WHERE (NEW.key IS NOT NULL AND (typeof(NEW.key) <> 'text'
              OR length(CAST(NEW.key AS BLOB)) NOT BETWEEN 1 AND 1024
              OR instr(CAST(NEW.key AS BLOB), x'00') > 0))
       OR (NEW.ordering_key IS NOT NULL AND (typeof(NEW.ordering_key) <> 'text'
              OR length(CAST(NEW.ordering_key AS BLOB)) NOT BETWEEN 1 AND 1024
              OR instr(CAST(NEW.ordering_key AS BLOB), x'00') > 0))
       OR (NEW.idempotency_key IS NOT NULL AND (typeof(NEW.idempotency_key) <> 'text'
              OR length(CAST(NEW.idempotency_key AS BLOB)) NOT BETWEEN 1 AND 1024
              OR instr(CAST(NEW.idempotency_key AS BLOB), x'00') > 0));
    -- CASE, not OR: SQLite may evaluate every operand of an OR, and json_type on text
    -- that is not JSON fails with its own error instead of this one.
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: headers must be a JSON object of strings, names 1-256 bytes, 65536 bytes in all')
    WHERE CASE
        WHEN NEW.headers IS NULL THEN 0
        WHEN typeof(NEW.headers) <> 'text' OR NOT json_valid(NEW.headers) THEN 1
        WHEN json_type(NEW.headers) <> 'object' THEN 1
        WHEN EXISTS (SELECT 1 FROM json_each(NEW.headers)
                     WHERE type <> 'text' OR length(CAST(key AS BLOB)) NOT BETWEEN 1 AND 256) THEN 1
        ELSE (SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0)
              FROM json_each(NEW.headers)) > 65536
    END;
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: give either delay_ms or deliver_at, not both')
    WHERE NEW.delay_ms IS NOT NULL AND NEW.deliver_at IS NOT NULL;
    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: delay_ms must be an integer of 0 to 10 years; deliver_at, idempotency_window_ms and published_at non-negative integers')
    WHERE (NEW.delay_ms IS NOT NULL AND (typeof(NEW.delay_ms) <> 'integer'
              OR NEW.delay_ms NOT BETWEEN 0 AND 315360000000))
       OR (NEW.deliver_at IS NOT NULL AND (typeof(NEW.deliver_at) <> 'integer' OR NEW.deliver_at < 0))
       OR (NEW.idempotency_window_ms IS NOT NULL
           AND (typeof(NEW.idempotency_window_ms) <> 'integer' OR NEW.idempotency_window_ms < 0))
       OR (NEW.published_at IS NOT NULL
           AND (typeof(NEW.published_at) <> 'integer' OR NEW.published_at < 0));

    SELECT RAISE(ABORT, 'ferrymq INVALID_ARGUMENT: priority must be an integer from 0 to 9')
    WHERE NEW.priority IS NOT NULL AND (typeof(NEW.priority) <> 'integer'
              OR NEW.priority NOT BETWEEN 0 AND 9);

    INSERT OR IGNORE INTO ferrymq_topics (name) VALUES (NEW.topic);

    -- Each statement below runs only if the idempotency key is not already taken: by an
    -- unexpired key whose message was not rolled back (a rolled-back half message frees
    -- it, a purged message keeps it). Nothing writes ferrymq_idempotency before the last
    -- of them, so they all see the same answer.
    INSERT INTO ferrymq_messages (topic_id, state, tag, key, headers, ordering_group, payload,
                                  published_at, deliver_at, priority)
    SELECT t.id, 0, NEW.tag, NEW.key,
           CASE WHEN NEW.headers IS NULL OR json(NEW.headers) = '{}' THEN NULL ELSE json(NEW.headers) END,
           NEW.ordering_key, CAST(NEW.payload AS BLOB),
           coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
           CASE WHEN NEW.deliver_at IS NOT NULL THEN NEW.deliver_at
                ELSE coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
                     + coalesce(NEW.delay_ms, 0) END,
           coalesce(NEW.priority, 0)
    FROM ferrymq_topics t
    WHERE t.name = NEW.topic
      AND NOT EXISTS (
          SELECT 1 FROM ferrymq_idempotency i LEFT JOIN ferrymq_messages m ON m.id = i.message_id
          WHERE i.topic_id = t.id AND i.idem_key = NEW.idempotency_key
            AND i.expires_at > coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
            AND (m.state IS NULL OR m.state <> 2));

    -- The fan-out: one delivery per consumer group whose filter matches the tag, blocked
    -- behind an unfinished message of the same ordering key in that group. The new
    -- message is the newest row: this INSERT holds the write lock.
    INSERT INTO ferrymq_deliveries (message_id, group_id, state, due_at, ordering_group, priority)
    SELECT m.id, s.group_id,
           CASE WHEN m.ordering_group IS NOT NULL AND EXISTS (
                    SELECT 1 FROM ferrymq_deliveries d
                    WHERE d.group_id = s.group_id AND d.ordering_group = m.ordering_group
                      AND d.state IN (0, 1, 4))
                THEN 4 ELSE 0 END,
           m.deliver_at, m.ordering_group, m.priority
    FROM ferrymq_messages m JOIN ferrymq_topics t ON t.id = m.topic_id
    JOIN ferrymq_subscriptions s ON s.topic_id = m.topic_id AND s.tag IN ('*', m.tag)
    WHERE m.id = (SELECT max(id) FROM ferrymq_messages) AND t.name = NEW.topic
      AND NOT EXISTS (
          SELECT 1 FROM ferrymq_idempotency i LEFT JOIN ferrymq_messages k ON k.id = i.message_id
          WHERE i.topic_id = t.id AND i.idem_key = NEW.idempotency_key
            AND i.expires_at > coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
            AND (k.state IS NULL OR k.state <> 2));

    -- The fold of migration 0002, as Queue::publish does it on every 1,024th id.
    UPDATE ferrymq_topics SET folded_messages = folded_messages + (
        SELECT count(*) FROM ferrymq_messages m
        WHERE m.topic_id = ferrymq_topics.id AND m.state = 0
          AND m.id > (SELECT through_id FROM ferrymq_counted)
          AND m.id <= (SELECT max(id) FROM ferrymq_messages))
    WHERE (SELECT max(id) FROM ferrymq_messages) % 1024 = 0
      AND (SELECT max(id) FROM ferrymq_messages) > (SELECT through_id FROM ferrymq_counted);
    UPDATE ferrymq_counted SET through_id = (SELECT max(id) FROM ferrymq_messages)
    WHERE (SELECT max(id) FROM ferrymq_messages) % 1024 = 0
      AND (SELECT max(id) FROM ferrymq_messages) > through_id;

    INSERT OR REPLACE INTO ferrymq_idempotency (topic_id, idem_key, message_id, expires_at)
    SELECT t.id, NEW.idempotency_key, (SELECT max(id) FROM ferrymq_messages),
           coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
           + coalesce(NEW.idempotency_window_ms, 86400000)
    FROM ferrymq_topics t
    WHERE t.name = NEW.topic AND NEW.idempotency_key IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM ferrymq_idempotency i LEFT JOIN ferrymq_messages m ON m.id = i.message_id
          WHERE i.topic_id = t.id AND i.idem_key = NEW.idempotency_key
            AND i.expires_at > coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
            AND (m.state IS NULL OR m.state <> 2));
END;
