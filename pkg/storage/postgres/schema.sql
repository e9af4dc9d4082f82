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
