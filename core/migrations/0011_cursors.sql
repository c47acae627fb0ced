-- ferrymq schema, version 11: a plain message (committed at publish, no ordering key, no priority, no
-- delay) gets no delivery rows when it is published. Each consumer group keeps a cursor,
-- `delivered_through`: the highest message id of its topic it has delivery rows for, or
-- has passed. A claim first writes the rows of the plain messages above its cursor
-- (`via_cursor = 1`) and moves the cursor, in the same write transaction; everything after
-- that (leases, retries, the DLQ, acked history) keeps its delivery row as before.
-- A publish then writes the message's B-tree and this partial index only, whatever the
-- number of groups.
ALTER TABLE ferrymq_messages ADD COLUMN via_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ferrymq_groups ADD COLUMN delivered_through INTEGER NOT NULL DEFAULT 0;
-- Every message already in the file has its delivery rows.
UPDATE ferrymq_groups SET delivered_through = coalesce((SELECT max(id) FROM ferrymq_messages), 0);
CREATE INDEX ferrymq_messages_via_cursor ON ferrymq_messages (topic_id, id) WHERE via_cursor = 1;

-- A process of an older ferrymq that had the file open during this migration keeps
-- running on it (the version is checked at open). Two of its writes would break the
-- cursors, so they fail: a purge deleting a plain message a group has not reached (it
-- sees no unacked rows), and a subscribe creating a group at cursor 0 (which would hand
-- the new group every message in the file). Its publishes write rows, as they did.
CREATE TRIGGER ferrymq_groups_need_a_cursor BEFORE INSERT ON ferrymq_groups
WHEN NEW.delivered_through = 0 AND EXISTS (SELECT 1 FROM ferrymq_messages)
BEGIN
    SELECT RAISE(ABORT, 'ferrymq STORAGE: this file is at ferrymq schema 11, newer than the build of the process subscribing (it opened the file before the upgrade): restart that process with the new ferrymq');
END;
CREATE TRIGGER ferrymq_messages_keep_unreached BEFORE DELETE ON ferrymq_messages
WHEN OLD.via_cursor = 1 AND EXISTS (
    SELECT 1 FROM ferrymq_groups g
    WHERE g.topic_id = OLD.topic_id AND g.delivered_through < OLD.id
      AND EXISTS (SELECT 1 FROM ferrymq_subscriptions s
                  WHERE s.topic_id = OLD.topic_id AND s.tag IN ('*', OLD.tag)
                    AND s.group_id = g.id))
BEGIN
    SELECT RAISE(ABORT, 'ferrymq STORAGE: a consumer group has not been handed this message yet (schema 11); a process of an older ferrymq purging this file must be restarted with the new version');
END;

-- The view's trigger (migration 0007), writing as Queue::publish does: a plain message
-- without delivery rows.
DROP TRIGGER ferrymq_publish_insert;
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
                                  published_at, deliver_at, priority, via_cursor)
    SELECT t.id, 0, NEW.tag, NEW.key,
           CASE WHEN NEW.headers IS NULL OR json(NEW.headers) = '{}' THEN NULL ELSE json(NEW.headers) END,
           NEW.ordering_key, CAST(NEW.payload AS BLOB),
           coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
           CASE WHEN NEW.deliver_at IS NOT NULL THEN NEW.deliver_at
                ELSE coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
                     + coalesce(NEW.delay_ms, 0) END,
           coalesce(NEW.priority, 0),
           -- Plain (schema 11): no ordering key, no priority, due now.
           NEW.ordering_key IS NULL AND coalesce(NEW.priority, 0) = 0
           AND coalesce(NEW.delay_ms, 0) = 0
           AND coalesce(NEW.deliver_at, NEW.published_at, 0)
               <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM ferrymq_topics t
    WHERE t.name = NEW.topic
      AND NOT EXISTS (
          SELECT 1 FROM ferrymq_idempotency i LEFT JOIN ferrymq_messages m ON m.id = i.message_id
          WHERE i.topic_id = t.id AND i.idem_key = NEW.idempotency_key
            AND i.expires_at > coalesce(NEW.published_at, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
            AND (m.state IS NULL OR m.state <> 2));

    -- The fan-out of a message that is not plain: one delivery per consumer group whose
    -- filter matches the tag, blocked behind an unfinished message of the same ordering
    -- key in that group. The new message is the newest row: this INSERT holds the write
    -- lock.
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
      AND m.via_cursor = 0
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
