-- PostgreSQL's 0005 writes a batch of outcomes in one round trip through a function. SQLite's
-- store runs in-process, with no round trips to save; nothing to add. This file keeps the two
-- dialects' migration versions in step.
SELECT 1;
