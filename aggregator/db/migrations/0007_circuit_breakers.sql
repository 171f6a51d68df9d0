-- Circuit breakers per provider account, shared by every process (aggregator.breaker,
-- aggregator.coordination.postgres). Same conventions as 0002_coordination.sql: instants are seconds
-- since 1970 on the DATABASE SERVER's clock (coord_now()), durations arrive in real seconds (a client
-- on a time-scaled clock converts first), each function is one statement (one transaction) and
-- takes the account's row FOR UPDATE, so trips, probe claims and closes are atomic.
--
-- States: 'closed' (calls go; counted), 'open' until open_until (calls refused), 'half_open' (one
-- probe in flight, held by probe_holder until probe_expires: a dead holder's probe is given up then,
-- and the next caller may probe). Counting: streak = consecutive failures; the failure rate is
-- estimated over two tumbling windows (the previous one weighted by how much of it still overlaps
-- the last window_s).

CREATE TABLE IF NOT EXISTS coord_circuit (
    account       text PRIMARY KEY,                      -- account fingerprint ('<provider>-<16 hex>')
    state         text NOT NULL DEFAULT 'closed',        -- 'closed' | 'open' | 'half_open'
    open_until    double precision NOT NULL DEFAULT 0,
    failures      integer NOT NULL DEFAULT 0,            -- since it last closed
    streak        integer NOT NULL DEFAULT 0,
    window_start  double precision NOT NULL DEFAULT 0,
    calls         double precision NOT NULL DEFAULT 0,
    fails         double precision NOT NULL DEFAULT 0,
    prev_calls    double precision NOT NULL DEFAULT 0,
    prev_fails    double precision NOT NULL DEFAULT 0,
    probe_holder  text,
    probe_expires double precision NOT NULL DEFAULT 0
);

-- The account's row, locked (created closed on first use); a half-open probe whose holder died
-- (probe_expires passed) is given up: open, due now.
CREATE OR REPLACE FUNCTION coord_circuit_row(p_account text, t double precision) RETURNS coord_circuit
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c coord_circuit%ROWTYPE;
BEGIN
    INSERT INTO coord_circuit (account, window_start) VALUES (p_account, t) ON CONFLICT (account) DO NOTHING;
    SELECT * INTO c FROM coord_circuit WHERE account = p_account FOR UPDATE;
    IF c.state = 'half_open' AND c.probe_expires <= t THEN
        UPDATE coord_circuit SET state = 'open', probe_holder = NULL, open_until = t
         WHERE account = p_account RETURNING * INTO c;
    END IF;
    RETURN c;
END $$;

-- Count p_calls finished calls (p_fails failed; p_streak failures after the batch's last success,
-- p_broken: it held one) while closed; open for greatest(p_cooldown, p_retry_after) on a threshold.
-- Returns the state, real seconds until a probe may go, failures since closed, and whether it tripped.
CREATE OR REPLACE FUNCTION coord_circuit_report(
    p_account text, p_max_streak integer, p_rate double precision, p_window double precision,
    p_min_calls integer, p_cooldown double precision, p_calls integer, p_fails integer, p_streak integer,
    p_broken boolean, p_retry_after double precision,
    OUT state text, OUT retry_in double precision, OUT failures integer, OUT changed boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t      double precision;
    c      coord_circuit%ROWTYPE;
    w      double precision;
    est_c  double precision;
    est_f  double precision;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- health counts, not money
    t := coord_now();
    c := coord_circuit_row(p_account, t);
    changed := false;
    IF c.state = 'closed' AND p_calls > 0 THEN
        IF t - c.window_start >= p_window THEN  -- roll the tumbling windows
            IF t - c.window_start < 2 * p_window THEN
                c.prev_calls := c.calls; c.prev_fails := c.fails; c.window_start := c.window_start + p_window;
            ELSE
                c.prev_calls := 0; c.prev_fails := 0; c.window_start := t;
            END IF;
            c.calls := 0; c.fails := 0;
        END IF;
        c.calls := c.calls + p_calls;
        c.fails := c.fails + p_fails;
        c.failures := c.failures + p_fails;
        c.streak := CASE WHEN p_broken THEN p_streak ELSE c.streak + p_streak END;
        w := greatest(0, 1 - (t - c.window_start) / p_window);
        est_c := c.prev_calls * w + c.calls;
        est_f := c.prev_fails * w + c.fails;
        IF c.streak >= p_max_streak OR (est_c >= p_min_calls AND est_f >= p_rate * est_c) THEN
            c.state := 'open';
            c.failures := greatest(c.streak, round(est_f)::integer);
            c.open_until := t + greatest(p_cooldown, coalesce(p_retry_after, 0));
            c.probe_holder := NULL;
            changed := true;
        END IF;
        UPDATE coord_circuit SET state = c.state, open_until = c.open_until, failures = c.failures,
               streak = c.streak, window_start = c.window_start, calls = c.calls, fails = c.fails,
               prev_calls = c.prev_calls, prev_fails = c.prev_fails, probe_holder = c.probe_holder
         WHERE account = p_account;
    END IF;
    state := c.state;
    retry_in := CASE WHEN c.state = 'open' THEN greatest(0, c.open_until - t) ELSE 0 END;
    failures := c.failures;
END $$;

-- Claim the half-open probe: granted once open_until has passed and no live probe is in flight.
CREATE OR REPLACE FUNCTION coord_circuit_probe(
    p_account text, p_holder text, p_ttl double precision,
    OUT state text, OUT retry_in double precision, OUT failures integer, OUT probe boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t double precision;
    c coord_circuit%ROWTYPE;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    t := coord_now();
    c := coord_circuit_row(p_account, t);
    probe := false;
    IF c.state = 'open' AND c.open_until <= t THEN
        UPDATE coord_circuit SET state = 'half_open', probe_holder = p_holder, probe_expires = t + p_ttl
         WHERE account = p_account;
        c.state := 'half_open';
        probe := true;
    END IF;
    state := c.state;
    retry_in := CASE WHEN c.state = 'open' THEN greatest(0, c.open_until - t) ELSE 0 END;
    failures := c.failures;
END $$;

-- The probe p_holder holds ended: p_ok true closes (counts restart), false reopens for
-- greatest(p_cooldown, p_retry_after), NULL (no answer either way) makes the next caller the probe.
CREATE OR REPLACE FUNCTION coord_circuit_settle(
    p_account text, p_holder text, p_ok boolean, p_cooldown double precision, p_retry_after double precision,
    OUT state text, OUT retry_in double precision, OUT failures integer, OUT changed boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t double precision;
    c coord_circuit%ROWTYPE;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    t := coord_now();
    c := coord_circuit_row(p_account, t);
    changed := false;
    IF c.state = 'half_open' AND c.probe_holder = p_holder THEN
        changed := true;
        IF p_ok THEN
            UPDATE coord_circuit SET state = 'closed', failures = 0, streak = 0, window_start = t, calls = 0,
                   fails = 0, prev_calls = 0, prev_fails = 0, probe_holder = NULL
             WHERE account = p_account RETURNING * INTO c;
        ELSIF p_ok IS NULL THEN
            UPDATE coord_circuit SET state = 'open', open_until = t, probe_holder = NULL
             WHERE account = p_account RETURNING * INTO c;
        ELSE
            UPDATE coord_circuit SET state = 'open', failures = c.failures + 1, probe_holder = NULL,
                   open_until = t + greatest(p_cooldown, coalesce(p_retry_after, 0))
             WHERE account = p_account RETURNING * INTO c;
        END IF;
    END IF;
    state := c.state;
    retry_in := CASE WHEN c.state = 'open' THEN greatest(0, c.open_until - t) ELSE 0 END;
    failures := c.failures;
END $$;
