-- ferrymq schema, version 10: the audit trail of operator actions (Queue::audit).
--
-- One row per operator action (pause, resume, schedule, unschedule, commit_half and
-- rollback_half by hand, redrive, purge_dead_letters, purge_dead_letter_ids, purge_acked,
-- vacuum), written in the same write transaction as the action where the action is one
-- transaction, so a row exists if and only if the action committed (bulk runs: in one
-- more transaction after their last; see docs/DESIGN.md, "The audit trail").
-- at: ms on the queue's clock; action: the verb; target: the group, schedule or message id
-- acted on ('' for the whole file); detail: JSON of what was asked and what changed, or
-- NULL; pid, process, host, user: who did it; reason: the caller's (Queue::with_reason).
CREATE TABLE ferrymq_audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT,
    pid     INTEGER NOT NULL,
    process TEXT NOT NULL,
    host    TEXT NOT NULL,
    user    TEXT NOT NULL,
    reason  TEXT
);
-- Append-only for every connection, not just ferrymq's: a plain sqlite3 shell must drop
-- these triggers (a schema change anyone can see) before it can alter the record.
-- (Transaction::execute cannot drop them: its authorizer refuses writes to ferrymq_*.)
CREATE TRIGGER ferrymq_audit_no_update BEFORE UPDATE ON ferrymq_audit
BEGIN
    SELECT RAISE(ABORT, 'ferrymq_audit is append-only: its records cannot be changed');
END;
CREATE TRIGGER ferrymq_audit_no_delete BEFORE DELETE ON ferrymq_audit
BEGIN
    SELECT RAISE(ABORT, 'ferrymq_audit is append-only: its records cannot be deleted');
END;
