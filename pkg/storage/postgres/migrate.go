package postgres

import (
	"context"
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/klog/v2"
)

//go:embed schema.sql
var schemaSQL string

type migration struct {
	version int
	sql     string
}

var migrationHeader = regexp.MustCompile(`(?m)^-- migration: (\d+)\s*$`)

// migrations splits schema.sql into its numbered sections.
func migrations() ([]migration, error) {
	locs := migrationHeader.FindAllStringSubmatchIndex(schemaSQL, -1)
	var out []migration
	for i, loc := range locs {
		v, err := strconv.Atoi(schemaSQL[loc[2]:loc[3]])
		if err != nil {
			return nil, err
		}
		end := len(schemaSQL)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if v != i+1 {
			return nil, fmt.Errorf("schema.sql: migration %d is out of sequence (want %d)", v, i+1)
		}
		out = append(out, migration{version: v, sql: strings.TrimSpace(schemaSQL[loc[1]:end])})
	}
	return out, nil
}

// migrationLockID is the advisory lock that serialises concurrent start-ups,
// so replicas starting together apply each migration exactly once.
const migrationLockID = 0x636f72655f6d70 // "core_mp"

// Migrate applies the migrations the database does not have yet.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring connection for migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, sqlMigrationLock, int64(migrationLockID)); err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	defer func() {
		// Released even when ctx has ended; if the server cannot be reached,
		// the lock goes with the session.
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, sqlMigrationUnlock, int64(migrationLockID)); err != nil {
			klog.ErrorS(err, "Releasing migration lock")
		}
	}()
	if _, err := conn.Exec(ctx, sqlMigrationTable); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, sqlMigrationVersion).Scan(&have); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d)", have, len(ms))
	}
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sqlMigrationRecord, m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("applying migration %d: %w", m.version, err)
		}
		klog.V(2).InfoS("Applied storage schema migration", "version", m.version)
	}
	return nil
}
