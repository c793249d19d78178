-- tidings schema, version 1 (SQLite).
-- Times are REAL epoch seconds; JSON columns hold TEXT written by orjson.
-- deliveries.endpoint_id has no foreign key on purpose: endpoints are only ever soft-deleted,
-- and the per-row check cost ~7% of publish throughput.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL
);

CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    key_hash         TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('platform', 'organization')),
    organization_id  TEXT REFERENCES organizations (id),
    created_at       REAL NOT NULL
);

CREATE TABLE partners (
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    partner_uuid     TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       REAL NOT NULL,
    PRIMARY KEY (organization_id, partner_uuid)
);

CREATE TABLE endpoints (
    seq                       INTEGER PRIMARY KEY AUTOINCREMENT,
    id                        TEXT NOT NULL UNIQUE,
    organization_id           TEXT NOT NULL REFERENCES organizations (id),
    url                       TEXT NOT NULL,
    event_types               TEXT NOT NULL,
    format                    TEXT NOT NULL,
    secrets                   TEXT NOT NULL,
    status                    TEXT NOT NULL DEFAULT 'active',
    partner_ids               TEXT,
    accepted_schema_versions  TEXT,
    sources                   TEXT NOT NULL,
    description               TEXT,
    headers                   TEXT NOT NULL DEFAULT '{}',
    rate_limit_per_second     REAL,
    pause_reason              TEXT,
    failure_streak            INTEGER NOT NULL DEFAULT 0,
    failing_since             REAL,
    last_success_at           REAL,
    created_at                REAL NOT NULL,
    updated_at                REAL NOT NULL,
    deleted_at                REAL
);
CREATE INDEX endpoints_org_seq ON endpoints (organization_id, seq);

CREATE TABLE events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    type             TEXT NOT NULL,
    schema_version   INTEGER NOT NULL,
    source           TEXT NOT NULL,
    partner_uuid     TEXT,
    subject          TEXT,
    attributes       TEXT NOT NULL DEFAULT '{}',
    data             TEXT NOT NULL,
    idempotency_key  TEXT,
    created_at       REAL NOT NULL
);
CREATE UNIQUE INDEX events_org_id ON events (organization_id, id);
CREATE UNIQUE INDEX events_org_idempotency_key ON events (organization_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_org_seq ON events (organization_id, seq);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE deliveries (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    organization_id   TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    endpoint_id       TEXT NOT NULL,
    status            TEXT NOT NULL,
    skip_reason       TEXT,
    schema_version    INTEGER,
    attempt_count     INTEGER NOT NULL DEFAULT 0,
    series            INTEGER NOT NULL DEFAULT 1,
    next_attempt_at   REAL,
    lease_owner       TEXT,
    lease_expires_at  REAL,
    last_attempt_at   REAL,
    last_status_code  INTEGER,
    last_error        TEXT,
    is_meta           INTEGER NOT NULL DEFAULT 0,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    -- also serves lookups by event (history per event, purge, replay of missing)
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_org_seq ON deliveries (organization_id, seq);
CREATE INDEX deliveries_endpoint_seq ON deliveries (endpoint_id, seq);
CREATE INDEX deliveries_created_at ON deliveries (created_at);

CREATE TABLE attempts (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id       TEXT NOT NULL,
    organization_id   TEXT NOT NULL,
    number            INTEGER NOT NULL,
    series            INTEGER NOT NULL,
    started_at        REAL NOT NULL,
    duration_ms       REAL NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_excerpt  TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, seq);

CREATE TABLE projections (
    organization_id    TEXT NOT NULL,
    kind               TEXT NOT NULL,
    key                TEXT NOT NULL,
    state              TEXT NOT NULL,
    version            INTEGER NOT NULL,
    updated_at         REAL NOT NULL,
    source_created_at  REAL NOT NULL,
    last_event_id      TEXT NOT NULL,
    PRIMARY KEY (organization_id, kind, key)
);
