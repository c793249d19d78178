-- Erasure of personal data (issue 22 section 4): an erased event keeps its skeleton (ids, type,
-- times, subject, attributes; its deliveries and attempts with their outcomes) and loses its
-- data (`data` becomes JSON null, `erased_at` says when). `organizations.erasures` counts the
-- erasures in an organization, part of the feed's ETag (an erased page is a changed page).
-- Events are found by subject for a subject's erasure (only events that name one are indexed).
ALTER TABLE events ADD COLUMN erased_at REAL;
ALTER TABLE organizations ADD COLUMN erasures INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_subject ON events (subject) WHERE subject IS NOT NULL;
