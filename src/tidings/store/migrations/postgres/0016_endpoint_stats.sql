-- Each endpoint's attempts per hour, for the console's health at a glance (issue 21): counts,
-- successes (2xx), attempt durations in fixed buckets (for p50 / p95 read to a bucket's bound)
-- and the hour's last attempt. Workers add what they attempted every few seconds
-- (delivery.stats); rows older than two days go with the next addition.
CREATE TABLE endpoint_stats (
    endpoint_id       TEXT NOT NULL,
    organization_id   TEXT NOT NULL,
    hour              DOUBLE PRECISION NOT NULL,
    attempts          INTEGER NOT NULL,
    successes         INTEGER NOT NULL,
    ms_le_10          INTEGER NOT NULL,
    ms_le_50          INTEGER NOT NULL,
    ms_le_100         INTEGER NOT NULL,
    ms_le_250         INTEGER NOT NULL,
    ms_le_500         INTEGER NOT NULL,
    ms_le_1000        INTEGER NOT NULL,
    ms_le_5000        INTEGER NOT NULL,
    ms_over_5000      INTEGER NOT NULL,
    last_attempt_at   DOUBLE PRECISION NOT NULL,
    last_status_code  INTEGER,
    last_error        TEXT,
    PRIMARY KEY (endpoint_id, hour)
);
CREATE INDEX endpoint_stats_hour ON endpoint_stats (hour);
