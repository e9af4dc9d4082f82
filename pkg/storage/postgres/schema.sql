-- Schema of the PostgreSQL storage backend. Each migration is a section that
-- starts with "-- migration: N"; they are applied in order, once, at start-up.
-- Keys are bytea so that range scans compare bytes, exactly as etcd does,
-- whatever the database's collation.

-- migration: 1
-- meta holds the one global revision. Every write transaction takes this row's
-- lock, so revisions are handed out and committed strictly in order: a reader
-- that sees revision N+1 has already seen N (no gaps, no reordering).
CREATE TABLE meta (
    id           int PRIMARY KEY CHECK (id = 1),
    current_rev  bigint NOT NULL
);
INSERT INTO meta (id, current_rev) VALUES (1, 1);

-- compaction holds the revision before which history is gone. It is a table
-- of its own so that compacting never holds the revision lock.
CREATE TABLE compaction (
    id   int PRIMARY KEY CHECK (id = 1),
    rev  bigint NOT NULL
);
INSERT INTO compaction (id, rev) VALUES (1, 0);

-- kv is the current state: one row per live key.
CREATE TABLE kv (
    key         bytea PRIMARY KEY,
    mod_rev     bigint NOT NULL,
    create_rev  bigint NOT NULL,
    value       bytea NOT NULL,
    expires_at  timestamptz
);
CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;

-- kv_log is the history: one row per revision, kept until compaction. It
-- serves watches, reads at an exact older revision and continue tokens.
CREATE TABLE kv_log (
    rev         bigint PRIMARY KEY,
    key         bytea NOT NULL,
    create_rev  bigint NOT NULL,
    prev_rev    bigint NOT NULL,          -- revision of the previous value, 0 on create
    deleted     boolean NOT NULL,
    value       bytea                     -- NULL for deletions
);
CREATE INDEX kv_log_key_rev ON kv_log (key, rev DESC);

-- migration: 2
-- commit_writes decides and applies one batch of conditional writes in a
-- single statement. The revision lock is taken and released inside the
-- server, so it is never held across a client round trip: a client that
-- stalls or vanishes mid-commit cannot stop everyone else's writes, and
-- statement_timeout and lock_timeout bound everything the lock holder does.
-- The batch's keys are distinct (the committer defers a second write to a
-- key to the next batch), so every condition is decided against the row as
-- it was before the batch. Each write is "if mod_revision(key) = expect then
-- put/delete", as an etcd transaction: expect 0 means the key must not exist,
-- -1 any revision (or none, for puts). A write that applies gets the next
-- revision in batch order; o_rev is 0 for one that failed its condition.
-- min_rev is the newest revision the calling process has seen: a database
-- whose revision is behind it was restored or failed over to a stale
-- standby, and reusing its revisions would silently fork history, so the
-- batch is refused (SQLSTATE CMR01) before anything is written.
-- w_not_after is when each write's caller stops waiting, in the server's
-- clock: a write that gets the lock later (it waited behind a stalled lock
-- holder, or its bytes sat in a partitioned network and arrived after its
-- client gave up) is not applied (o_rev -1), so a write that failed with a
-- timeout either applied before its deadline or never will.
-- o_now is the server's clock, from which the client keeps its estimate of
-- the offset between the two clocks.
CREATE FUNCTION commit_writes(w_keys bytea[], w_values bytea[], w_deletes boolean[],
        w_expects bigint[], w_ttls bigint[], w_not_after timestamptz[], min_rev bigint)
    RETURNS TABLE (o_ord bigint, o_rev bigint, o_head bigint, o_now timestamptz)
    LANGUAGE plpgsql AS $$
DECLARE
    base bigint;
    locked_at timestamptz;
BEGIN
    -- Under READ COMMITTED each statement of a volatile function takes a new
    -- snapshot, so the statement below, which runs once the lock is held,
    -- sees every batch committed before it.
    SELECT m.current_rev INTO base FROM meta m WHERE m.id = 1 FOR UPDATE;
    locked_at := clock_timestamp();
    IF base < min_rev THEN
        RAISE EXCEPTION 'storage revision went backwards: the database is at revision %, this process has seen revision %', base, min_rev
            USING ERRCODE = 'CMR01', DETAIL = base::text,
                  HINT = 'The database was restored or failed over to a standby that lacks recent commits; see "Revision regression" in docs/storage.md.';
    END IF;
    RETURN QUERY
    WITH w AS (
        SELECT u.ord, u.key, u.value, u.del, u.expect, u.ttl, u.not_after < locked_at AS late,
            kv.mod_rev AS cur_mod, kv.create_rev AS cur_create
        FROM unnest(w_keys, w_values, w_deletes, w_expects, w_ttls, w_not_after)
            WITH ORDINALITY AS u(key, value, del, expect, ttl, not_after, ord)
        LEFT JOIN kv ON kv.key = u.key
    ), ok AS (
        SELECT w.*, base + row_number() OVER (ORDER BY w.ord) AS new_rev
        FROM w
        WHERE NOT w.late AND CASE
            WHEN w.del THEN w.cur_mod IS NOT NULL AND (w.expect = -1 OR w.cur_mod = w.expect)
            WHEN w.expect = -1 THEN true
            WHEN w.expect = 0 THEN w.cur_mod IS NULL
            ELSE w.cur_mod = w.expect
        END
    ), logged AS (
        INSERT INTO kv_log (rev, key, create_rev, prev_rev, deleted, value)
        SELECT ok.new_rev, ok.key, coalesce(ok.cur_create, ok.new_rev), coalesce(ok.cur_mod, 0), ok.del,
            CASE WHEN ok.del THEN NULL ELSE ok.value END
        FROM ok
    ), removed AS (
        DELETE FROM kv USING ok WHERE kv.key = ok.key AND ok.del
    ), stored AS (
        INSERT INTO kv (key, value, mod_rev, create_rev, expires_at)
        SELECT ok.key, ok.value, ok.new_rev, coalesce(ok.cur_create, ok.new_rev),
            CASE WHEN ok.ttl > 0 THEN now() + ok.ttl * interval '1 second' END
        FROM ok WHERE NOT ok.del
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev,
            create_rev = excluded.create_rev, expires_at = excluded.expires_at
    ), bumped AS (
        UPDATE meta SET current_rev = base + (SELECT count(*) FROM ok) WHERE id = 1 AND EXISTS (SELECT 1 FROM ok)
    )
    SELECT w.ord, CASE WHEN w.late THEN -1 ELSE coalesce(ok.new_rev, 0) END,
        base + (SELECT count(*) FROM ok), clock_timestamp()
    FROM w LEFT JOIN ok ON ok.ord = w.ord
    ORDER BY w.ord;
END
$$;

-- migration: 3
-- commit_writes as in migration 2 with two changes.
-- Each key is looked up on its own (LATERAL ... LIMIT 1, which the planner cannot flatten into
-- a join): plpgsql keeps the plan it made when kv was small, and a server that never analyzes
-- kv (autovacuum off) kept a hash join that read every row of kv, live and dead, on every
-- commit: 1.3 ms of a create's PostgreSQL CPU once kv held 70,000 dead rows.
-- A batch whose every write is conditioned on a revision its key has moved past fails without
-- the revision lock.
CREATE OR REPLACE FUNCTION commit_writes(w_keys bytea[], w_values bytea[], w_deletes boolean[],
        w_expects bigint[], w_ttls bigint[], w_not_after timestamptz[], min_rev bigint)
    RETURNS TABLE (o_ord bigint, o_rev bigint, o_head bigint, o_now timestamptz)
    LANGUAGE plpgsql AS $$
DECLARE
    base bigint;
    locked_at timestamptz;
    doomed boolean;
BEGIN
    -- A write conditioned on a revision (expect > 0) that its key no longer has can never apply:
    -- revisions are never handed out twice. When every write of the batch is such a write, as
    -- when writers race to update one object and all but one lose, the batch is answered from
    -- one snapshot without the revision lock: no transaction id, no commit record to sync,
    -- nothing for other writers to wait behind.
    SELECT m.current_rev, bool_and(u.expect > 0 AND cur.mod_rev IS DISTINCT FROM u.expect)
    INTO base, doomed
    FROM meta m, unnest(w_keys, w_expects) AS u(key, expect)
    LEFT JOIN LATERAL (SELECT kv.mod_rev FROM kv WHERE kv.key = u.key LIMIT 1) cur ON true
    WHERE m.id = 1
    GROUP BY m.current_rev;
    IF doomed THEN
        IF base < min_rev THEN
            RAISE EXCEPTION 'storage revision went backwards: the database is at revision %, this process has seen revision %', base, min_rev
                USING ERRCODE = 'CMR01', DETAIL = base::text,
                      HINT = 'The database was restored or failed over to a standby that lacks recent commits; see "Revision regression" in docs/storage.md.';
        END IF;
        RETURN QUERY
        SELECT u.ord, 0::bigint, base, clock_timestamp()
        FROM unnest(w_keys) WITH ORDINALITY AS u(key, ord)
        ORDER BY u.ord;
        RETURN;
    END IF;
    -- Under READ COMMITTED each statement of a volatile function takes a new
    -- snapshot, so the statement below, which runs once the lock is held,
    -- sees every batch committed before it.
    SELECT m.current_rev INTO base FROM meta m WHERE m.id = 1 FOR UPDATE;
    locked_at := clock_timestamp();
    IF base < min_rev THEN
        RAISE EXCEPTION 'storage revision went backwards: the database is at revision %, this process has seen revision %', base, min_rev
            USING ERRCODE = 'CMR01', DETAIL = base::text,
                  HINT = 'The database was restored or failed over to a standby that lacks recent commits; see "Revision regression" in docs/storage.md.';
    END IF;
    RETURN QUERY
    WITH w AS (
        SELECT u.ord, u.key, u.value, u.del, u.expect, u.ttl, u.not_after < locked_at AS late,
            kv.mod_rev AS cur_mod, kv.create_rev AS cur_create
        FROM unnest(w_keys, w_values, w_deletes, w_expects, w_ttls, w_not_after)
            WITH ORDINALITY AS u(key, value, del, expect, ttl, not_after, ord)
        LEFT JOIN LATERAL (SELECT kv.mod_rev, kv.create_rev FROM kv WHERE kv.key = u.key LIMIT 1) kv ON true
    ), ok AS (
        SELECT w.*, base + row_number() OVER (ORDER BY w.ord) AS new_rev
        FROM w
        WHERE NOT w.late AND CASE
            WHEN w.del THEN w.cur_mod IS NOT NULL AND (w.expect = -1 OR w.cur_mod = w.expect)
            WHEN w.expect = -1 THEN true
            WHEN w.expect = 0 THEN w.cur_mod IS NULL
            ELSE w.cur_mod = w.expect
        END
    ), logged AS (
        INSERT INTO kv_log (rev, key, create_rev, prev_rev, deleted, value)
        SELECT ok.new_rev, ok.key, coalesce(ok.cur_create, ok.new_rev), coalesce(ok.cur_mod, 0), ok.del,
            CASE WHEN ok.del THEN NULL ELSE ok.value END
        FROM ok
    ), removed AS (
        DELETE FROM kv USING ok WHERE kv.key = ok.key AND ok.del
    ), stored AS (
        INSERT INTO kv (key, value, mod_rev, create_rev, expires_at)
        SELECT ok.key, ok.value, ok.new_rev, coalesce(ok.cur_create, ok.new_rev),
            CASE WHEN ok.ttl > 0 THEN now() + ok.ttl * interval '1 second' END
        FROM ok WHERE NOT ok.del
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev,
            create_rev = excluded.create_rev, expires_at = excluded.expires_at
    ), bumped AS (
        UPDATE meta SET current_rev = base + (SELECT count(*) FROM ok) WHERE id = 1 AND EXISTS (SELECT 1 FROM ok)
    )
    SELECT w.ord, CASE WHEN w.late THEN -1 ELSE coalesce(ok.new_rev, 0) END,
        base + (SELECT count(*) FROM ok), clock_timestamp()
    FROM w LEFT JOIN ok ON ok.ord = w.ord
    ORDER BY w.ord;
END
$$;
