-- tidings schema, version 1 (PostgreSQL).
-- Times are DOUBLE PRECISION epoch seconds; JSON columns are JSONB.
-- deliveries.endpoint_id has no foreign key on purpose: endpoints are only ever soft-deleted,
-- and the per-row check cost ~7% of publish throughput.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    key_hash         TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('platform', 'organization')),
    organization_id  TEXT REFERENCES organizations (id),
    created_at       DOUBLE PRECISION NOT NULL
);

CREATE TABLE partners (
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    partner_uuid     TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (organization_id, partner_uuid)
);

CREATE TABLE endpoints (
    seq                       BIGSERIAL PRIMARY KEY,
    id                        TEXT NOT NULL UNIQUE,
    organization_id           TEXT NOT NULL REFERENCES organizations (id),
    url                       TEXT NOT NULL,
    event_types               JSONB NOT NULL,
    format                    TEXT NOT NULL,
    secrets                   JSONB NOT NULL,
    status                    TEXT NOT NULL DEFAULT 'active',
    partner_ids               JSONB,
    accepted_schema_versions  JSONB,
    sources                   JSONB NOT NULL,
    description               TEXT,
    headers                   JSONB NOT NULL DEFAULT '{}',
    rate_limit_per_second     DOUBLE PRECISION,
    pause_reason              TEXT,
    failure_streak            INTEGER NOT NULL DEFAULT 0,
    failing_since             DOUBLE PRECISION,
    last_success_at           DOUBLE PRECISION,
    created_at                DOUBLE PRECISION NOT NULL,
    updated_at                DOUBLE PRECISION NOT NULL,
    deleted_at                DOUBLE PRECISION
);
CREATE INDEX endpoints_org_seq ON endpoints (organization_id, seq);

CREATE TABLE events (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    type             TEXT NOT NULL,
    schema_version   INTEGER NOT NULL,
    source           TEXT NOT NULL,
    partner_uuid     TEXT,
    subject          TEXT,
    attributes       JSONB NOT NULL DEFAULT '{}',
    data             JSONB NOT NULL,
    idempotency_key  TEXT,
    created_at       DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX events_org_id ON events (organization_id, id);
CREATE UNIQUE INDEX events_org_idempotency_key ON events (organization_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_org_seq ON events (organization_id, seq);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE deliveries (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    organization_id   TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    endpoint_id       TEXT NOT NULL,
    status            TEXT NOT NULL,
    skip_reason       TEXT,
    schema_version    INTEGER,
    attempt_count     INTEGER NOT NULL DEFAULT 0,
    series            INTEGER NOT NULL DEFAULT 1,
    next_attempt_at   DOUBLE PRECISION,
    lease_owner       TEXT,
    lease_expires_at  DOUBLE PRECISION,
    last_attempt_at   DOUBLE PRECISION,
    last_status_code  INTEGER,
    last_error        TEXT,
    is_meta           BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        DOUBLE PRECISION NOT NULL,
    updated_at        DOUBLE PRECISION NOT NULL,
    -- also serves lookups by event (history per event, purge, replay of missing)
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_org_seq ON deliveries (organization_id, seq DESC);
CREATE INDEX deliveries_endpoint_seq ON deliveries (endpoint_id, seq DESC);
CREATE INDEX deliveries_created_at ON deliveries (created_at);

CREATE TABLE attempts (
    seq               BIGSERIAL PRIMARY KEY,
    delivery_id       TEXT NOT NULL,
    organization_id   TEXT NOT NULL,
    number            INTEGER NOT NULL,
    series            INTEGER NOT NULL,
    started_at        DOUBLE PRECISION NOT NULL,
    duration_ms       DOUBLE PRECISION NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_excerpt  TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, seq);

CREATE TABLE projections (
    organization_id    TEXT NOT NULL,
    kind               TEXT NOT NULL,
    key                TEXT NOT NULL,
    state              JSONB NOT NULL,
    version            INTEGER NOT NULL,
    updated_at         DOUBLE PRECISION NOT NULL,
    source_created_at  DOUBLE PRECISION NOT NULL,
    last_event_id      TEXT NOT NULL,
    PRIMARY KEY (organization_id, kind, key)
);
