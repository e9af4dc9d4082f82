// Package pgmigrate applies a schema's numbered migrations to PostgreSQL: sections of one SQL
// file headed `-- migration: N`, each applied once in its own transaction and recorded in a
// version table, under an advisory lock so that replicas starting together apply each exactly
// once.
package pgmigrate

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/klog/v2"
)

// Schema is one set of migrations.
type Schema struct {
	// Name says whose schema it is, for logs and errors.
	Name string
	// SQL holds the migrations, each headed by a line `-- migration: N`, N counting from 1.
	SQL string
	// VersionTable records the applied versions (e.g. "metrics.schema_migrations"); it is
	// created when missing. It must be a constant of the program, never input.
	VersionTable string
	// Prelude runs before the version table is made (e.g. CREATE SCHEMA IF NOT EXISTS).
	Prelude string
	// LockID is the advisory lock serialising start-ups; distinct per schema.
	LockID int64
}

type migration struct {
	version int
	sql     string
}

var header = regexp.MustCompile(`(?m)^-- migration: (\d+)\s*$`)

func (s Schema) migrations() ([]migration, error) {
	locs := header.FindAllStringSubmatchIndex(s.SQL, -1)
	var out []migration
	for i, loc := range locs {
		v, err := strconv.Atoi(s.SQL[loc[2]:loc[3]])
		if err != nil {
			return nil, err
		}
		end := len(s.SQL)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if v != i+1 {
			return nil, fmt.Errorf("%s schema: migration %d is out of sequence (want %d)", s.Name, v, i+1)
		}
		out = append(out, migration{version: v, sql: strings.TrimSpace(s.SQL[loc[1]:end])})
	}
	return out, nil
}

// Apply applies the migrations the database does not have yet.
func (s Schema) Apply(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := s.migrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection for %s migrations: %w", s.Name, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", s.LockID); err != nil {
		return fmt.Errorf("taking the %s migration lock: %w", s.Name, err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", s.LockID); err != nil {
			klog.ErrorS(err, "Releasing migration lock", "schema", s.Name)
		}
	}()
	if s.Prelude != "" {
		if _, err := conn.Exec(ctx, s.Prelude); err != nil {
			return fmt.Errorf("preparing the %s schema: %w", s.Name, err)
		}
	}
	// The table name is a constant of the program (see VersionTable), not input.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.VersionTable+` (
		version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("creating %s: %w", s.VersionTable, err)
	}
	var have int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.VersionTable).Scan(&have); err != nil {
		return fmt.Errorf("reading the %s schema version: %w", s.Name, err)
	}
	if have > len(ms) {
		return fmt.Errorf("the %s schema version %d is newer than this binary knows (%d)", s.Name, have, len(ms))
	}
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+s.VersionTable+" (version) VALUES ($1)", m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("applying %s migration %d: %w", s.Name, m.version, err)
		}
		klog.V(2).InfoS("Applied schema migration", "schema", s.Name, "version", m.version)
	}
	return nil
}
