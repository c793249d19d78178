-- Workers that said they were alive (the operator's overview: "workers seen recently"). One row a
-- worker process, upserted every 15 s (delivery.presence), deleted when it stops
-- gracefully; rows of workers not seen for a day go with the next upsert of any worker.
CREATE TABLE workers_seen (
    worker_id     TEXT PRIMARY KEY,
    started_at    DOUBLE PRECISION NOT NULL,
    last_seen_at  DOUBLE PRECISION NOT NULL
);
