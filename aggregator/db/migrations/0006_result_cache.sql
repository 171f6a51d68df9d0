-- 0006 result cache (aggregator.cache): the key of the one run that answers identical requests.
--
-- A finished, cacheable run (complete and successful) holds its request's cache key; storing a key clears
-- it from every other run in the same transaction, so a key has at most one run. A lookup reads the run
-- holding the key when it is done and finished (wall clock) within the caller's TTL. Single flight between
-- processes uses the coordination leases of 0002 (pool 'cache/cache:<key>'), not this table.

ALTER TABLE runs ADD COLUMN IF NOT EXISTS cache_key text;
CREATE INDEX IF NOT EXISTS runs_cache_key ON runs (cache_key) WHERE cache_key IS NOT NULL;
