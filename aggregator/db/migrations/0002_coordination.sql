-- Coordination across processes (aggregator.coordination.postgres): rate limits, leases, budgets.
--
-- Time: every instant here is seconds since 1970 on the DATABASE SERVER's clock
-- (extract(epoch from clock_timestamp()), read after the locks are taken), so every process
-- shares one time source whatever its own clock says. Durations arrive in real seconds (a client on
-- a time-scaled clock converts its virtual seconds first); budget periods are computed from the
-- client's virtual wall time, derived from the server's clock (virtual = epoch + (now - epoch) / scale).
--
-- Locking: acquirers of one bucket or lease pool serialize on a transaction-scoped advisory lock
-- of its key (pg_advisory_xact_lock(hashtextextended(key, 0)): no row write, released at commit),
-- taken in key order so two multi-bucket acquirers never deadlock; a budget period's row
-- (coord_budget) is taken FOR UPDATE, also in key order. Each function is one statement: one
-- transaction, one round trip.
--
-- Durability: the functions of limits and leases commit with synchronous_commit off (set for their
-- own transaction): a crash of the server may forget the last moment's requests or leases, which
-- can cost a 429, never money. Budget functions commit durably (the server's setting).
--
-- Expiry: in-flight requests, leases and reservations carry expires_at, pushed forward by their
-- holder's heartbeat (coord_heartbeat). A dead holder's in-flight request counts as stamped at its
-- expiry (the latest it can have reached the provider); its lease is dropped; its reservation counts
-- as spent (it may have been charged). Idempotent: safe to apply twice.

CREATE TABLE IF NOT EXISTS coord_bucket (
    key          text PRIMARY KEY,                       -- '<account fingerprint>/<bucket name>'
    paused_until double precision NOT NULL DEFAULT 0,    -- a 429's Retry-After, shared
    kind         text,                                   -- 'window' | 'bucket' | 'gate' (last acquirer's)
    capacity     double precision,                       -- token bucket: burst
    rate         double precision,                       -- token bucket: tokens per real second
    tokens       double precision,                       -- token bucket: level at refilled_at
    refilled_at  double precision,
    blocked_at   double precision                        -- last refusal that only a release could lift
);

CREATE TABLE IF NOT EXISTS coord_request (
    id         bigserial PRIMARY KEY,
    key        text NOT NULL,
    holder     text NOT NULL,
    sent_at    double precision NOT NULL,
    stamped_at double precision,                         -- NULL while in flight
    expires_at double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS coord_request_key ON coord_request (key, stamped_at);

CREATE TABLE IF NOT EXISTS coord_pool (
    name       text PRIMARY KEY,                         -- '<account fingerprint>/<pool name>'
    waiting_at double precision                          -- last refusal: a release then NOTIFYs waiters
);

CREATE TABLE IF NOT EXISTS coord_lease (
    id          bigserial PRIMARY KEY,
    pool        text NOT NULL,
    holder      text NOT NULL,
    acquired_at double precision NOT NULL,
    expires_at  double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS coord_lease_pool ON coord_lease (pool);

CREATE TABLE IF NOT EXISTS coord_budget (
    scope        text NOT NULL,                          -- 'run:<id>' | 'account:<fingerprint>'
    period_start timestamptz NOT NULL,                   -- UTC start of the period; 1970-01-01 for 'total'
    period       text NOT NULL,
    credit_limit double precision NOT NULL,
    spent        double precision NOT NULL DEFAULT 0,
    reserved     double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, period_start)
);

CREATE SEQUENCE IF NOT EXISTS coord_hold_seq;
CREATE TABLE IF NOT EXISTS coord_hold (                  -- one row per (reservation, budget period)
    id           bigserial PRIMARY KEY,
    hold         bigint NOT NULL,
    scope        text NOT NULL,
    period_start timestamptz NOT NULL,
    amount       double precision NOT NULL,
    holder       text NOT NULL,
    expires_at   double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS coord_hold_hold ON coord_hold (hold);
CREATE INDEX IF NOT EXISTS coord_hold_scope ON coord_hold (scope, period_start);

CREATE OR REPLACE FUNCTION coord_now() RETURNS double precision
LANGUAGE sql VOLATILE AS $$ SELECT extract(epoch FROM clock_timestamp())::double precision $$;

-- Take one token of every bucket in p_keys (sorted by the caller), all or none.
-- p_kinds: 'window' (p_limits = requests per window, p_params = window in real s),
--          'bucket' (p_limits = burst, p_params = tokens per real s), 'gate' (pause only).
-- Returns the in-flight request ids (admitted, wait = 0), or ids NULL and wait: real seconds until
-- the earliest moment it may pass, or -1 when only a release can free it.
-- A window's in-flight row whose holder died (expires_at passed, never stamped) counts as stamped at
-- its expiry; stamps that left the window are deleted in batches (they no longer count). Each count
-- is an index range scan of (key, stamped_at): in flight, then the stamps inside the window.
CREATE OR REPLACE FUNCTION coord_acquire(
    p_holder text, p_keys text[], p_kinds text[], p_limits double precision[],
    p_params double precision[], p_ttl double precision,
    OUT ids bigint[], OUT wait double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n          int := coalesce(array_length(p_keys, 1), 0);
    t          double precision;
    i          int;
    k          text;
    b          coord_bucket%ROWTYPE;
    n_flight   bigint;
    n_stamps   bigint;
    n_old      bigint;
    n_gone     bigint;
    oldest     double precision;
    level      double precision;
    worst      double precision := 0;
    blocked    text[] := '{}';
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- see the header: limits, not money
    FOR i IN 1 .. n LOOP  -- the caller sorted the keys: every acquirer locks in one order
        IF p_kinds[i] <> 'gate' THEN
            PERFORM pg_advisory_xact_lock(hashtextextended(p_keys[i], 0));
        END IF;
    END LOOP;
    t := coord_now();
    FOR i IN 1 .. n LOOP
        k := p_keys[i];
        SELECT * INTO b FROM coord_bucket WHERE key = k;
        IF NOT FOUND THEN
            b.key := k;
            b.paused_until := 0;
        END IF;
        IF p_kinds[i] <> 'gate' AND (b.kind IS DISTINCT FROM p_kinds[i] OR (p_kinds[i] = 'bucket'
                AND (b.capacity IS DISTINCT FROM p_limits[i] OR b.rate IS DISTINCT FROM p_params[i]))) THEN
            INSERT INTO coord_bucket AS c (key, kind, capacity, rate) VALUES (k, p_kinds[i], p_limits[i], p_params[i])
            ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, capacity = EXCLUDED.capacity, rate = EXCLUDED.rate;
        END IF;
        IF b.paused_until > t THEN
            worst := greatest(worst, b.paused_until - t);
            CONTINUE;
        END IF;
        IF p_kinds[i] = 'window' THEN
            -- in flight; a dead holder's expired row counts as stamped at its expiry
            SELECT count(*) FILTER (WHERE expires_at > t),
                   count(*) FILTER (WHERE expires_at <= t AND expires_at > t - p_params[i]),
                   min(expires_at) FILTER (WHERE expires_at <= t AND expires_at > t - p_params[i]),
                   count(*) FILTER (WHERE expires_at <= t - p_params[i])
              INTO n_flight, n_stamps, oldest, n_old
              FROM coord_request WHERE key = k AND stamped_at IS NULL;
            IF n_old > 0 THEN
                DELETE FROM coord_request WHERE key = k AND stamped_at IS NULL AND expires_at <= t - p_params[i];
            END IF;
            SELECT n_stamps + count(*), least(oldest, min(stamped_at)) INTO n_stamps, oldest
              FROM coord_request WHERE key = k AND stamped_at > t - p_params[i];
            -- stamps that left the window no longer count: delete them in batches (index order)
            IF (SELECT stamped_at FROM coord_request WHERE key = k AND stamped_at IS NOT NULL
                 ORDER BY stamped_at LIMIT 1) <= t - 2 * p_params[i] THEN
                DELETE FROM coord_request WHERE key = k AND stamped_at <= t - p_params[i];
            END IF;
            IF n_flight + n_stamps >= p_limits[i] THEN
                IF oldest IS NOT NULL THEN
                    worst := greatest(worst, oldest + p_params[i] - t, 1e-6);
                ELSE
                    blocked := blocked || k;
                END IF;
            END IF;
        ELSIF p_kinds[i] = 'bucket' THEN
            level := least(p_limits[i], coalesce(b.tokens, p_limits[i])
                                        + greatest(t - coalesce(b.refilled_at, t), 0) * p_params[i]);
            SELECT count(*) FILTER (WHERE expires_at > t), count(*) FILTER (WHERE expires_at <= t)
              INTO n_flight, n_gone FROM coord_request WHERE key = k;
            IF n_gone > 0 OR b.tokens IS NULL THEN  -- a dead holder's requests consumed their tokens
                DELETE FROM coord_request WHERE key = k AND expires_at <= t;
                level := level - n_gone;
                UPDATE coord_bucket SET tokens = level, refilled_at = t WHERE key = k;
            END IF;
            IF level < n_flight + 1 THEN
                IF n_flight + 1 > p_limits[i] THEN
                    blocked := blocked || k;
                ELSE
                    worst := greatest(worst, (n_flight + 1 - level) / p_params[i], 1e-6);
                END IF;
            END IF;
        END IF;
    END LOOP;
    IF cardinality(blocked) > 0 THEN  -- tell releasers someone waits for them
        UPDATE coord_bucket SET blocked_at = t WHERE key = ANY (blocked);
    END IF;
    IF worst > 0 OR cardinality(blocked) > 0 THEN
        ids := NULL;
        wait := CASE WHEN worst > 0 THEN worst ELSE -1 END;
        RETURN;
    END IF;
    WITH r AS (
        INSERT INTO coord_request (key, holder, sent_at, expires_at)
        SELECT u.key, p_holder, t, t + p_ttl
          FROM unnest(p_keys, p_kinds) AS u (key, kind) WHERE u.kind <> 'gate'
        RETURNING id)
    SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}') INTO ids FROM r;
    wait := 0;
END $$;

-- The responses of requests p_ids arrived: stamp window rows, consume bucket tokens (under the
-- bucket's lock); wake the waiters of a bucket that refused someone lately.
CREATE OR REPLACE FUNCTION coord_release(p_holder text, p_ids bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t   double precision;
    r   record;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- see the header: limits, not money
    -- the buckets' locks, windows too: an acquirer counts a request in flight in one statement and
    -- stamped in the next, so a stamp landing between the two would be counted twice
    PERFORM pg_advisory_xact_lock(hashtextextended(b.key, 0)) FROM coord_bucket b
     WHERE b.kind IN ('bucket', 'window')
       AND b.key IN (SELECT key FROM coord_request WHERE id = ANY (p_ids) AND holder = p_holder)
     ORDER BY b.key;
    t := coord_now();
    FOR r IN SELECT q.id, q.key, b.kind, b.capacity, b.rate, b.tokens, b.refilled_at, b.blocked_at
               FROM coord_request q JOIN coord_bucket b ON b.key = q.key
              WHERE q.id = ANY (p_ids) AND q.holder = p_holder AND q.stamped_at IS NULL LOOP
        IF r.kind = 'bucket' THEN
            UPDATE coord_bucket
               SET tokens = least(r.capacity, coalesce(r.tokens, r.capacity)
                                              + greatest(t - coalesce(r.refilled_at, t), 0) * r.rate) - 1,
                   refilled_at = t
             WHERE key = r.key;
            DELETE FROM coord_request WHERE id = r.id;
        ELSE
            UPDATE coord_request SET stamped_at = t WHERE id = r.id;
        END IF;
        IF r.blocked_at > t - 5 THEN
            PERFORM pg_notify('coord', r.key);
        END IF;
    END LOOP;
END $$;

-- A 429: hold every bucket in p_keys for p_seconds (real) from now, in every process.
CREATE OR REPLACE FUNCTION coord_pause(p_keys text[], p_seconds double precision) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t double precision := coord_now();
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- see the header: limits, not money
    INSERT INTO coord_bucket AS b (key, paused_until)
    SELECT u, t + p_seconds FROM unnest(p_keys) AS u ORDER BY u
    ON CONFLICT (key) DO UPDATE SET paused_until = greatest(b.paused_until, EXCLUDED.paused_until);
END $$;

-- Take one of p_capacity leases of pool p_pool, or learn how long to wait: until the soonest
-- lease expiry (a dead holder's), unless a release comes first (it NOTIFYs the waiters).
CREATE OR REPLACE FUNCTION coord_lease_acquire(
    p_holder text, p_pool text, p_capacity int, p_ttl double precision,
    OUT id bigint, OUT wait double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t        double precision;
    n        bigint;
    n_gone   bigint;
    soonest  double precision;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- see the header: limits, not money
    PERFORM pg_advisory_xact_lock(hashtextextended(p_pool, 0));
    t := coord_now();
    SELECT count(*) FILTER (WHERE expires_at > t), count(*) FILTER (WHERE expires_at <= t),
           min(expires_at) FILTER (WHERE expires_at > t)
      INTO n, n_gone, soonest FROM coord_lease WHERE pool = p_pool;
    IF n_gone > 0 THEN
        DELETE FROM coord_lease WHERE pool = p_pool AND expires_at <= t;
    END IF;
    IF n < p_capacity THEN
        INSERT INTO coord_lease (pool, holder, acquired_at, expires_at)
        VALUES (p_pool, p_holder, t, t + p_ttl) RETURNING coord_lease.id INTO id;
        wait := 0;
    ELSE
        INSERT INTO coord_pool AS p (name, waiting_at) VALUES (p_pool, t)
        ON CONFLICT (name) DO UPDATE SET waiting_at = EXCLUDED.waiting_at;
        id := NULL;
        wait := greatest(soonest - t, 1e-6);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION coord_lease_release(p_holder text, p_ids bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- see the header: limits, not money
    FOR k IN WITH gone AS (DELETE FROM coord_lease WHERE id = ANY (p_ids) AND holder = p_holder RETURNING pool)
             SELECT DISTINCT g.pool FROM gone g JOIN coord_pool p ON p.name = g.pool
              WHERE p.waiting_at > coord_now() - 5 LOOP
        PERFORM pg_notify('coord', k);
    END LOOP;
END $$;

-- Push the expiry of everything p_holder still holds p_ttl real seconds ahead. Returns how many of
-- p_leases were no longer there (expired and taken: the holder should know it lost them).
CREATE OR REPLACE FUNCTION coord_heartbeat(
    p_holder text, p_requests bigint[], p_leases bigint[], p_holds bigint[], p_ttl double precision)
RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t     double precision := coord_now();
    found int;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- see the header: limits, not money
    UPDATE coord_request SET expires_at = t + p_ttl
     WHERE id = ANY (p_requests) AND holder = p_holder AND stamped_at IS NULL;
    UPDATE coord_lease SET expires_at = t + p_ttl WHERE id = ANY (p_leases) AND holder = p_holder;
    GET DIAGNOSTICS found = ROW_COUNT;
    UPDATE coord_hold SET expires_at = t + p_ttl WHERE hold = ANY (p_holds) AND holder = p_holder;
    RETURN coalesce(array_length(p_leases, 1), 0) - found;
END $$;

-- The UTC start of the period of virtual instant p_virtual (seconds since 1970).
CREATE OR REPLACE FUNCTION coord_period_start(p_period text, p_virtual double precision) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_period = 'total' THEN to_timestamp(0)
                ELSE date_trunc(p_period, to_timestamp(p_virtual) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END
$$;

-- Expired reservations of one budget period count as spent (their call may have been charged).
CREATE OR REPLACE FUNCTION coord_reap_holds(p_scope text, p_start timestamptz, p_now double precision)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    gone double precision;
BEGIN
    WITH d AS (DELETE FROM coord_hold WHERE scope = p_scope AND period_start = p_start AND expires_at <= p_now
               RETURNING amount)
    SELECT coalesce(sum(amount), 0) INTO gone FROM d;
    IF gone > 0 THEN
        UPDATE coord_budget SET reserved = greatest(reserved - gone, 0), spent = spent + gone
         WHERE scope = p_scope AND period_start = p_start;
    END IF;
END $$;

-- Reserve p_amount in every scope's current period, all or none. On refusal, hold is NULL and
-- refused (the index into p_scopes, 1-based) and remaining say which scope and what it had left.
CREATE OR REPLACE FUNCTION coord_reserve(
    p_holder text, p_scopes text[], p_periods text[], p_limits double precision[], p_amount double precision,
    p_epoch double precision, p_scale double precision, p_ttl double precision,
    OUT hold bigint, OUT refused int, OUT remaining double precision, OUT starts timestamptz[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t        double precision;
    virt     double precision;
    i        int;
    n        int := coalesce(array_length(p_scopes, 1), 0);
    g        coord_budget%ROWTYPE;
    left_    double precision;
BEGIN
    t := coord_now();
    virt := p_epoch + (t - p_epoch) / p_scale;
    starts := ARRAY(SELECT coord_period_start(p, virt) FROM unnest(p_periods) WITH ORDINALITY AS u (p, o)
                    ORDER BY o);
    INSERT INTO coord_budget (scope, period_start, period, credit_limit)
    SELECT s, st, p, l FROM unnest(p_scopes, starts, p_periods, p_limits) AS u (s, st, p, l)
     ORDER BY s, st
    ON CONFLICT DO NOTHING;
    PERFORM 1 FROM coord_budget b
      JOIN unnest(p_scopes, starts) AS u (s, st) ON b.scope = u.s AND b.period_start = u.st
     ORDER BY b.scope, b.period_start FOR UPDATE OF b;
    t := coord_now();
    FOR i IN 1 .. n LOOP
        PERFORM coord_reap_holds(p_scopes[i], starts[i], t);
        SELECT * INTO g FROM coord_budget WHERE scope = p_scopes[i] AND period_start = starts[i];
        left_ := p_limits[i] - g.spent - g.reserved;
        IF p_amount > left_ + 1e-9 THEN
            hold := NULL;
            refused := i;
            remaining := greatest(left_, 0);
            RETURN;
        END IF;
    END LOOP;
    hold := nextval('coord_hold_seq');
    FOR i IN 1 .. n LOOP
        UPDATE coord_budget SET reserved = reserved + p_amount, credit_limit = p_limits[i]
         WHERE scope = p_scopes[i] AND period_start = starts[i];
        INSERT INTO coord_hold (hold, scope, period_start, amount, holder, expires_at)
        VALUES (hold, p_scopes[i], starts[i], p_amount, p_holder, t + p_ttl);
    END LOOP;
END $$;

-- Close reservation p_hold: charge p_charged (0 = released) in each of its periods.
CREATE OR REPLACE FUNCTION coord_settle(p_holder text, p_hold bigint, p_charged double precision) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r record;
BEGIN
    PERFORM 1 FROM coord_budget b JOIN coord_hold h ON b.scope = h.scope AND b.period_start = h.period_start
     WHERE h.hold = p_hold ORDER BY b.scope, b.period_start FOR UPDATE OF b;
    FOR r IN DELETE FROM coord_hold WHERE hold = p_hold AND holder = p_holder
             RETURNING scope, period_start, amount LOOP
        UPDATE coord_budget
           SET reserved = greatest(reserved - r.amount, 0), spent = spent + least(greatest(p_charged, 0), r.amount)
         WHERE scope = r.scope AND period_start = r.period_start;
    END LOOP;
END $$;

-- A budget's current period: limit, spent, reserved (expired reservations counted as spent).
CREATE OR REPLACE FUNCTION coord_usage(
    p_scope text, p_period text, p_limit double precision, p_epoch double precision, p_scale double precision,
    OUT spent double precision, OUT reserved double precision, OUT start timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t double precision := coord_now();
BEGIN
    start := coord_period_start(p_period, p_epoch + (t - p_epoch) / p_scale);
    PERFORM 1 FROM coord_budget WHERE scope = p_scope AND period_start = start FOR UPDATE;
    PERFORM coord_reap_holds(p_scope, start, t);
    SELECT b.spent, b.reserved INTO spent, reserved FROM coord_budget b
     WHERE b.scope = p_scope AND b.period_start = start;
    spent := coalesce(spent, 0);
    reserved := coalesce(reserved, 0);
END $$;
