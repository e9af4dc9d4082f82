-- Every statement the PostgreSQL storage backend sends, by name (queries.go
-- loads them; a name used in Go but missing here fails at start-up). Every
-- value travels as a bind parameter; the few statements that cannot take
-- parameters (LISTEN) have no variable parts at all. The schema and the
-- commit_writes function they rely on are in schema.sql.

-- name: migration-lock
-- Serialises concurrent start-ups so replicas apply each migration once.
SELECT pg_advisory_lock($1)

-- name: migration-unlock
SELECT pg_advisory_unlock($1)

-- name: migration-table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())

-- name: migration-version
SELECT coalesce(max(version), 0) FROM schema_migrations

-- name: migration-record
INSERT INTO schema_migrations (version) VALUES ($1)

-- name: current-revision
SELECT current_rev FROM meta WHERE id = 1

-- name: revisions
-- The current and the compacted revision, in one snapshot.
SELECT m.current_rev, c.rev FROM meta m, compaction c

-- name: get
-- One key at the current revision, with that revision (the key may not exist).
SELECT m.current_rev, kv.mod_rev, kv.create_rev, kv.value
FROM meta m LEFT JOIN kv ON kv.key = $1 WHERE m.id = 1

-- name: range-page
-- The keys in [$1, $2) as they were at revision $3, in key order, at most $4
-- of them (NULL: all). A key unchanged since $3 is its kv row; only keys
-- changed after $3 (found through kv_log's primary key, so the cost is the
-- writes since $3, not the history) are looked up in kv_log, newest version
-- at or before $3 first. Each branch stops at $4 rows in key order (the
-- planner does not merge an unlimited UNION ALL in order, it sorts all of
-- it), so a page costs O(page + writes since $3), never the rest of the
-- range. Reads at the current revision find no changed keys.
WITH changed AS (
    SELECT DISTINCT key FROM kv_log WHERE rev > $3 AND key >= $1 AND key < $2
)
SELECT key, mod_rev, create_rev, value FROM (
    (SELECT key, mod_rev, create_rev, value FROM kv
        WHERE key >= $1 AND key < $2 AND mod_rev <= $3
        ORDER BY key LIMIT $4)
    UNION ALL
    (SELECT h.key, h.rev, h.create_rev, h.value
        FROM changed c CROSS JOIN LATERAL (
            SELECT l.key, l.rev, l.create_rev, l.value, l.deleted FROM kv_log l
            WHERE l.key = c.key AND l.rev <= $3 ORDER BY l.rev DESC LIMIT 1
        ) h
        WHERE NOT h.deleted
        ORDER BY h.key LIMIT $4)
) page
ORDER BY key
LIMIT $4

-- name: range-count
-- How many keys [$1, $2) held at revision $3: the keys there now (an
-- index-only count), plus, for each key changed after $3 (few: the writes
-- since $3), one if it existed at $3 and minus one if it exists now. The
-- per-key lookups are subqueries in the select list so that each stays an
-- index probe.
WITH changed AS (
    SELECT DISTINCT key FROM kv_log WHERE rev > $3 AND key >= $1 AND key < $2
)
SELECT (SELECT count(*) FROM kv WHERE key >= $1 AND key < $2)
    + coalesce((SELECT sum(
        CASE WHEN (SELECT NOT l.deleted FROM kv_log l
                   WHERE l.key = c.key AND l.rev <= $3 ORDER BY l.rev DESC LIMIT 1) THEN 1 ELSE 0 END
        - CASE WHEN EXISTS (SELECT 1 FROM kv WHERE kv.key = c.key) THEN 1 ELSE 0 END)
      FROM changed c), 0)

-- name: events-page
-- The current and the compacted revision, and up to $2 events after revision
-- $1 with the previous value of each updated or deleted key, no more than $3
-- bytes of them (the first event always comes, whatever its size), all from
-- one statement's snapshot: one round trip per poll instead of a read-only
-- transaction's four. The first row carries the revisions; with no events it
-- is the only row and its event columns are NULL. Nothing is read when $1 is
-- before the compacted revision (its events are gone). Each previous value is
-- looked up on its own (LATERAL ... LIMIT 1), as commit_writes looks up keys:
-- a join left to the planner became a hash of all of kv_log on every poll
-- while kv_log had no statistics (autovacuum off, before the first
-- compaction analyzes it). octet_length reads a TOASTed value's size without
-- fetching it, and the running sum only ever grows, so the rows kept are a
-- contiguous run.
WITH r AS (
    SELECT (SELECT current_rev FROM meta WHERE id = 1) AS current_rev,
        (SELECT rev FROM compaction WHERE id = 1) AS compacted
)
SELECT r.current_rev, r.compacted, page.rev, page.key, page.value, page.prev_value, page.created, page.deleted
FROM r LEFT JOIN (
    SELECT l.rev, l.key, l.value, p.value AS prev_value, l.prev_rev = 0 AS created, l.deleted,
        octet_length(l.key) + coalesce(octet_length(l.value), 0) + coalesce(octet_length(p.value), 0) AS size,
        sum(octet_length(l.key) + coalesce(octet_length(l.value), 0) + coalesce(octet_length(p.value), 0))
            OVER (ORDER BY l.rev ROWS UNBOUNDED PRECEDING) AS running
    FROM kv_log l LEFT JOIN LATERAL (SELECT value FROM kv_log p WHERE p.rev = l.prev_rev LIMIT 1) p ON true
    WHERE l.rev > $1 AND $1 >= (SELECT compacted FROM r) ORDER BY l.rev LIMIT $2
) page ON page.running <= $3 OR page.running = page.size
ORDER BY page.rev

-- name: commit-writes
-- One batch of conditional writes, decided and applied by commit_writes in
-- one statement (see schema.sql): $6 holds each write's deadline in the
-- server's clock, $7 is the newest revision this process has seen, below
-- which the database's revision must not be.
SELECT o_ord, o_rev, o_head, o_now FROM commit_writes($1, $2, $3, $4, $5, $6, $7)

-- name: clock
SELECT clock_timestamp()

-- name: expired-keys
SELECT key, mod_rev FROM kv WHERE expires_at <= now() ORDER BY expires_at LIMIT 1000

-- name: notify
SELECT pg_notify($1, $2)

-- name: listen
LISTEN core_mp_revisions

-- name: ping
SELECT 1

-- name: local-statement-timeout
-- A longer statement timeout for one transaction (compaction) than the
-- session's.
SELECT set_config('statement_timeout', $1, true)

-- name: compaction-lock
-- The row lock on compaction serialises compactors, not writers.
SELECT rev FROM compaction WHERE id = 1 FOR UPDATE

-- name: compact-superseded
-- A version goes when a newer one of the same key is at or before $1; a
-- deletion before $1 goes with everything before it.
DELETE FROM kv_log l WHERE l.rev < $1 AND (l.deleted OR EXISTS (
    SELECT 1 FROM kv_log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= $1))

-- name: compact-deletion-at
DELETE FROM kv_log WHERE rev = $1 AND deleted

-- name: compaction-set
UPDATE compaction SET rev = $1 WHERE id = 1

-- name: compaction-revision
SELECT rev FROM compaction WHERE id = 1

-- name: stats
SELECT count(*), coalesce(sum(length(value)) / nullif(count(*), 0), 0)::bigint
FROM kv WHERE key >= $1 AND key < $2

-- name: autovacuum-off
-- Whether the server leaves dead rows in place (autovacuum off, as on some test servers).
SELECT current_setting('autovacuum') = 'off'

-- name: stale-statistics
-- The store's tables whose statistics are as stale as autovacuum's defaults let them get (50
-- rows plus a tenth of the table changed since the last ANALYZE), when the server's autovacuum
-- is off and will not analyze them itself.
SELECT s.relname::text FROM pg_stat_user_tables s
WHERE current_setting('autovacuum') = 'off' AND s.relid IN ('kv'::regclass, 'kv_log'::regclass)
    AND s.n_mod_since_analyze > 50 + 0.1 * greatest(s.n_live_tup, 0)

-- name: analyze-kv
ANALYZE kv

-- name: analyze-kv-log
ANALYZE kv_log

-- name: vacuum
-- The rows deletes and compaction leave dead: without autovacuum every range scan of kv and
-- kv_log walks them until a VACUUM (measured: an empty pipelines list read 10,400 dead index
-- entries, 44-70 ms). Not in a transaction block, as VACUUM requires.
VACUUM (ANALYZE) kv, kv_log

-- name: session-statement-timeout
SELECT set_config('statement_timeout', $1, false)

-- name: reset-statement-timeout
RESET statement_timeout
