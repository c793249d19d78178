-- The store's connections plan each statement with its own parameters
-- (plan_cache_mode = force_custom_plan, postgres.py SESSION_SETTINGS), because a generic plan
-- made while the tables were nearly empty scans them whole for as long as no ANALYZE comes.
-- Inside the PL/pgSQL functions that setting would plan every statement again on every call:
-- two worker processes drained 10-40 % slower (tidings_record_outcomes re-planned per flush).
-- The functions keep PostgreSQL's cached plans instead, and plan them without sequential scans,
-- so a plan cached on small tables still looks every row up by key (the publish functions
-- have planned so since migration 0002).
ALTER FUNCTION tidings_record_outcomes(text, json, double precision, text[], text[])
    SET enable_seqscan = off;
ALTER FUNCTION tidings_record_outcomes(text, json, double precision, text[], text[])
    SET plan_cache_mode = auto;
ALTER FUNCTION tidings_publish(jsonb, json, json, json) SET plan_cache_mode = auto;
