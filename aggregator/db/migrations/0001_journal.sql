-- 0001 journal: the run journal of aggregator.db.journal.PostgresJournal, the tables of the SQLite journal
-- (aggregator/journal.py) in PostgreSQL's types.
--
-- Documents written whole and read back whole (requests, reports, hits, outcomes, the job and its
-- checkpoint) are `json`: kept byte for byte (a provider's raw record keeps its key order) and any string
-- is accepted (`jsonb` refuses U+0000, which a provider's data or a query may hold). The history, our own
-- event names appended in place, is `jsonb`. Run ids sort by code point (COLLATE "C"), as in Python, so
-- shortest unique prefixes are the same as in SQLite. Times are timestamptz (UTC).
-- No foreign keys: a job may be recorded before (or without) its run, as in every JobStore.

CREATE TABLE runs (
    run_id        text COLLATE "C" PRIMARY KEY,
    id            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,  -- insertion order (SQLite's rowid)
    created_at    timestamptz NOT NULL,                        -- on the run's clock (virtual on the sandbox)
    status        text NOT NULL,
    request       json NOT NULL,
    report        json,
    created_wall  timestamptz,
    finished_wall timestamptz,
    wall_s        double precision
);
CREATE INDEX runs_newest ON runs ((COALESCE(created_wall, created_at)) DESC, id DESC);

CREATE TABLE jobs (
    run_id          text COLLATE "C" NOT NULL,
    provider        text NOT NULL,
    idempotency_key text NOT NULL,
    state           text NOT NULL,
    request         json NOT NULL,
    job             json,
    checkpoint      json,
    history         jsonb NOT NULL,
    PRIMARY KEY (run_id, provider)
);

CREATE TABLE hits (
    run_id   text COLLATE "C" NOT NULL,
    provider text NOT NULL,
    seq      integer NOT NULL,  -- 0, 1, 2... per job; the key refuses a second writer of one job's hits
    hit      json NOT NULL,
    PRIMARY KEY (run_id, provider, seq)
);

CREATE TABLE outcomes (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id   text COLLATE "C" NOT NULL,
    provider text NOT NULL,
    outcome  json NOT NULL
);
CREATE INDEX outcomes_run ON outcomes (run_id, id);
