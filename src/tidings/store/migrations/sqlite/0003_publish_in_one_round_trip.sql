-- PostgreSQL's 0003 lets a process keep an organization's endpoints in memory, checked by a
-- version when it publishes. SQLite's store reads them in-process on every publish; nothing to
-- add. This file keeps the two dialects' migration versions in step.
SELECT 1;
