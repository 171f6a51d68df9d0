-- 0005 batch budget: a batch's `--budget` (credits every row of the batch draws from, in every worker),
-- NULL when it has none; running the batch again with another `--budget` replaces it. What the batch
-- spends is reserved in the coordination budgets of migration 0002 under the scope 'batch:<batch_id>'.
-- credits_retired: the credits of runs a row no longer points at (a failed row run again keeps only its
-- new run), so that what the batch spent can always be counted from its rows: retired + each row's.

ALTER TABLE batches ADD COLUMN budget double precision CHECK (budget IS NULL OR budget > 0);
ALTER TABLE batches ADD COLUMN credits_retired double precision NOT NULL DEFAULT 0;
