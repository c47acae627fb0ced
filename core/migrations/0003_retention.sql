-- ferrymq schema, version 3.
-- decided_at: when a half message was committed or rolled back (NULL for a message
-- published committed, and for a half message still undecided). It tells a committed
-- half message from an ordinary one (commit_half on the latter is an error), and starts
-- the retention period of a rolled-back message, which purge_acked deletes once that
-- period has passed (before version 3 rolled-back messages stayed forever).
ALTER TABLE ferrymq_messages ADD COLUMN decided_at INTEGER;
-- Version 2 did not record when a message was rolled back: the migration's wall-clock
-- time is the latest it can have been, so every audit row is kept at least as long as
-- asked. Committed half messages are known only by their check rows.
UPDATE ferrymq_messages
    SET decided_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE state = 2;
UPDATE ferrymq_messages
    SET decided_at = (SELECT max(c.at) FROM ferrymq_checks c
                      WHERE c.message_id = ferrymq_messages.id)
    WHERE state = 0 AND id IN (SELECT message_id FROM ferrymq_checks);
-- Rolled-back messages by when they were rolled back: the retention sweep.
CREATE INDEX ferrymq_messages_rolled_back ON ferrymq_messages (decided_at)
    WHERE state = 2;
-- Half and rolled-back messages in id order (the implicit rowid ends every index entry):
-- half_messages lists the oldest without sorting the whole set.
CREATE INDEX ferrymq_messages_by_state ON ferrymq_messages (state)
    WHERE state <> 0;
-- Dead deliveries of a group in message id order: redrive and purge page through them
-- by id instead of sorting every dead letter for each chunk.
CREATE INDEX ferrymq_deliveries_dead ON ferrymq_deliveries (group_id, message_id, due_at)
    WHERE state = 3;
-- Deleting a rolled-back message deletes its idempotency key with it (a key whose
-- message is gone counts as taken).
CREATE INDEX ferrymq_idempotency_message ON ferrymq_idempotency (message_id);
