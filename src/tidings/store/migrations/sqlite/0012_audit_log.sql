-- The audit trail (issue 22 section 3): who changed what, and who read a secret. Written in the
-- same transaction as the change it records; kept TIDINGS_AUDIT_RETENTION_DAYS (default 365),
-- apart from delivery history. `changes` holds the changed field names and non-secret values
-- (a JSON object), never a secret. organization_id is NULL for platform-wide actions.
CREATE TABLE audit_log (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    at               REAL NOT NULL,
    organization_id  TEXT,
    actor_key_id     TEXT NOT NULL,
    actor_session_id TEXT,
    action           TEXT NOT NULL,
    target_id        TEXT,
    changes          TEXT NOT NULL,
    client_address   TEXT
);
CREATE INDEX audit_log_org ON audit_log (organization_id, seq);
CREATE INDEX audit_log_at ON audit_log (at);
