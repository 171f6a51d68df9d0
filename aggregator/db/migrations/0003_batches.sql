-- 0003 batches: the batch store of aggregator.batch.pgstore.PostgresBatchStore, the tables of the SQLite
-- batch store (aggregator/batch/store.py) in PostgreSQL's types.
--
-- A batch is recorded once (its id is a hash of its rows and target); each row has one line in
-- batch_rows: its state (pending, running, done, failed), its search's run id in the journal (written
-- before the run's first paid call), and once finished its merged record count, credits and error.
-- Rows are run by `deepsearch worker` processes as Procrastinate jobs (migration 0004), one job per
-- row whose lock and queueing lock are '<batch_id>:<row_no>'. Ids sort by code point (COLLATE "C"),
-- as in Python, so unique prefixes are the same as in SQLite. Times are wall-clock timestamptz.

CREATE TABLE batches (
    batch_id     text COLLATE "C" PRIMARY KEY,
    created_wall timestamptz NOT NULL,
    source       text,
    options      json NOT NULL,
    total_rows   integer NOT NULL
);

CREATE TABLE batch_rows (
    batch_id      text COLLATE "C" NOT NULL,
    row_no        integer NOT NULL,
    line          integer NOT NULL,
    row_data      json NOT NULL,
    run_id        text COLLATE "C",
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'done', 'failed')),
    records       integer NOT NULL DEFAULT 0,
    credits       double precision NOT NULL DEFAULT 0,
    error         text,
    started_wall  timestamptz,
    finished_wall timestamptz,
    PRIMARY KEY (batch_id, row_no)
);
