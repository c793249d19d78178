-- Ordered delivery per subject, sequence numbers and the ledger (issue 25): see the PostgreSQL
-- migration of the same number for what each column means.
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none'
    CHECK (ordering IN ('none', 'subject'));
ALTER TABLE deliveries ADD COLUMN sequence INTEGER;
ALTER TABLE deliveries ADD COLUMN subject TEXT;
ALTER TABLE deliveries ADD COLUMN previous_event_id TEXT;
ALTER TABLE deliveries ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
-- when webhook.subject_blocked told of this delivery holding its subject back (once)
ALTER TABLE deliveries ADD COLUMN blocked_reported_at REAL;
CREATE TABLE endpoint_sequences (
    endpoint_id TEXT PRIMARY KEY,
    last        INTEGER NOT NULL
);
CREATE TABLE subject_heads (
    endpoint_id TEXT NOT NULL,
    subject     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, subject)
);

UPDATE deliveries SET sequence = n.sequence, subject = n.subject
FROM (SELECT d.seq, e.subject,
             row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.seq) AS sequence
      FROM deliveries AS d
      LEFT JOIN events AS e ON e.organization_id = d.organization_id AND e.id = d.event_id)
     AS n
WHERE deliveries.seq = n.seq;
UPDATE deliveries SET previous_event_id = p.previous_event_id
FROM (SELECT seq, lag(event_id) OVER (PARTITION BY endpoint_id, subject ORDER BY sequence)
                  AS previous_event_id
      FROM deliveries WHERE subject IS NOT NULL AND status <> 'skipped') AS p
WHERE deliveries.seq = p.seq AND p.previous_event_id IS NOT NULL;
INSERT INTO endpoint_sequences (endpoint_id, last)
SELECT endpoint_id, max(sequence) FROM deliveries GROUP BY endpoint_id;
INSERT INTO subject_heads (endpoint_id, subject, event_id)
SELECT endpoint_id, subject, event_id FROM (
    SELECT endpoint_id, subject, event_id,
           row_number() OVER (PARTITION BY endpoint_id, subject ORDER BY sequence DESC) AS r
    FROM deliveries WHERE subject IS NOT NULL AND status <> 'skipped')
WHERE r = 1;

CREATE UNIQUE INDEX deliveries_endpoint_sequence ON deliveries (endpoint_id, sequence);
-- It serves what deliveries_endpoint_seq served (an endpoint's history newest first: the two
-- orders agree within an endpoint), so every update of a delivery writes one index less.
DROP INDEX deliveries_endpoint_seq;
CREATE INDEX deliveries_ordered_head ON deliveries (endpoint_id, subject)
    WHERE ordered AND status IN ('pending', 'held');
CREATE INDEX deliveries_ordered_queued ON deliveries (endpoint_id, subject, sequence)
    WHERE ordered AND status = 'queued';
