-- PostgreSQL's 0002 adds a function that publishes new events in one round trip. SQLite has
-- no round trips to save (the database is in the process) and nothing to add; this file keeps
-- the two dialects' migration versions in step.
SELECT 1;
