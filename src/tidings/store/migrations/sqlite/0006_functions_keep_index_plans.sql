-- PostgreSQL's 0006 sets how its functions plan. SQLite has no such functions; nothing to
-- change. This file keeps the two dialects' migration versions in step.
SELECT 1;
