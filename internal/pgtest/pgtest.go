// Package pgtest gives each test its own throwaway PostgreSQL database on the
// server named by DATABASE_URL (default: the local server on 127.0.0.1:5432).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is used when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns the URL of the server tests run against.
func ServerURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewDatabase creates an empty database for tb, drops it when tb ends and
// returns its connection URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	u, err := CreateDatabase(context.Background(), ServerURL())
	if err != nil {
		tb.Fatalf("creating test database: %v", err)
	}
	tb.Cleanup(func() {
		if err := DropDatabase(context.Background(), ServerURL(), u); err != nil {
			tb.Logf("dropping test database: %v", err)
		}
	})
	return u
}

// NewPool is NewDatabase plus a pool on it, closed when tb ends.
func NewPool(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	u := NewDatabase(tb)
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		tb.Fatalf("connecting to test database: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool, u
}

// CreateDatabase creates a database with a random name on the server at
// serverURL and returns a URL that points at it.
func CreateDatabase(ctx context.Context, serverURL string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := "cmp_test_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", redact(serverURL), err)
	}
	defer conn.Close(ctx)
	// Identifiers cannot be parameters; the name is generated above from hex only.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops the database dbURL names, ending its sessions first.
func DropDatabase(ctx context.Context, serverURL, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	name := u.Path[1:]
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable url>"
	}
	return u.Redacted()
}
