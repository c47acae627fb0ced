-- ferrymq schema, version 6: recurring messages (Queue::schedule).
-- One row per schedule. next_at is the time of the next tick not yet handled (ms since
-- the Unix epoch, on the queue's clock). A tick is handled in one write transaction that
-- moves next_at on (UPDATE ... WHERE name = ? AND next_at = <the tick it handles>) and
-- publishes the tick's message, so each tick gives its message once over every process.
-- cron (with tz, an IANA name; NULL: UTC) or every_ms: exactly one is set.
-- missed: 0 catch_up, 1 once, 2 skip. repeat_left: tick times left (NULL: no end); the
-- row is deleted with its last tick. fired: tick times handled so far.
CREATE TABLE ferrymq_schedules (
    name        TEXT PRIMARY KEY,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    tag         TEXT,
    key         TEXT,
    headers     TEXT,
    cron        TEXT,
    tz          TEXT,
    every_ms    INTEGER,
    missed      INTEGER NOT NULL,
    next_at     INTEGER NOT NULL,
    fired       INTEGER NOT NULL DEFAULT 0,
    repeat_left INTEGER,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
-- What is due: the receive's check (min) and the firing (next_at <= now).
CREATE INDEX ferrymq_schedules_next ON ferrymq_schedules (next_at);
