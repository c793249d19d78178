-- PostgreSQL's 0004 rebuilds its delivery history indexes in ascending seq order. SQLite's were
-- ascending from 0001; this file keeps the two dialects' migration versions in step.
SELECT 1;
