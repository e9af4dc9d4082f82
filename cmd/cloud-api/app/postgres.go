package app

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/pflag"
)

// PostgresOptions say how to reach the database that holds every object.
type PostgresOptions struct {
	// URL is a libpq connection string or URL.
	URL string
	// MaxConns caps the pool; 0 keeps pgx's default (max(4, CPUs)).
	MaxConns int32
}

// NewPostgresOptions takes the URL default from DATABASE_URL.
func NewPostgresOptions() *PostgresOptions {
	return &PostgresOptions{URL: os.Getenv("DATABASE_URL")}
}

// AddFlags registers the flags. The URL's default is not printed: it may
// carry a password.
func (o *PostgresOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.URL, "postgres-url", o.URL,
		"PostgreSQL connection URL or DSN (e.g. postgres://user@host:5432/db?sslmode=verify-full). Defaults to $DATABASE_URL.")
	fs.Lookup("postgres-url").DefValue = "$DATABASE_URL"
	fs.Int32Var(&o.MaxConns, "postgres-max-conns", o.MaxConns,
		"Maximum number of connections in the pool; 0 uses pgx's default (the larger of 4 and the number of CPUs).")
}

// Validate reports every problem.
func (o *PostgresOptions) Validate() []error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("--postgres-url (or DATABASE_URL) is required"))
	} else if _, err := pgxpool.ParseConfig(o.URL); err != nil {
		// pgx redacts the password in parse errors.
		errs = append(errs, fmt.Errorf("--postgres-url: %w", err))
	}
	if o.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("--postgres-max-conns must not be negative, got %d", o.MaxConns))
	}
	return errs
}

// NewPool opens the connection pool.
func (o *PostgresOptions) NewPool(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing --postgres-url: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating PostgreSQL pool: %w", err)
	}
	return pool, nil
}
