-- ferrymq schema, version 9: the inbox (Transaction::inbox, sql::INBOX).
--
-- One row per key a consumer has seen: `tx.inbox(key, window)` inserts it in the
-- caller's transaction, so the key is seen if and only if that transaction commits (with
-- the business rows it guards). seen_at: when its window began; expires_at: when it
-- ends (ms, the queue's clock). The key counts as seen while expires_at > now and as new
-- again after (the same statement then takes it over). The expiry index lets
-- purge_acked delete expired keys in short transactions.
CREATE TABLE ferrymq_inbox (
    key        TEXT NOT NULL PRIMARY KEY,
    seen_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ferrymq_inbox_expiry ON ferrymq_inbox (expires_at);
