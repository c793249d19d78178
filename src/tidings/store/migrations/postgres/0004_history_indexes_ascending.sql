-- The delivery history indexes in ascending seq order (issue 6: batch publishing).
--
-- 0001 built (organization_id, seq DESC) and (endpoint_id, seq DESC). New deliveries have the
-- highest seq, so each insert went to the *start* of its organization's (or endpoint's) range:
-- for a single organization, the leftmost leaf of the whole index, split half and half every time
-- it filled, leaving pages half empty behind it. Ascending, the same inserts go to the end of the
-- range (for one organization, the rightmost leaf, which PostgreSQL appends to and splits
-- 90/10), and `ORDER BY seq DESC` reads the index backward just as fast.
-- Measured (/tmp/probe/pub.py, 30,000 events in batches of 100, fan-out 10, alternated):
-- PostgreSQL CPU per event 221-226 us descending, 208-213 us ascending.
--
-- Rebuilding takes the table's write lock for as long as the two indexes take to build.
DROP INDEX deliveries_org_seq;
CREATE INDEX deliveries_org_seq ON deliveries (organization_id, seq);
DROP INDEX deliveries_endpoint_seq;
CREATE INDEX deliveries_endpoint_seq ON deliveries (endpoint_id, seq);
