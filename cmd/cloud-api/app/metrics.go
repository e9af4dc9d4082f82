package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/calyptia/core-management-plane/pkg/metricstore"
	"github.com/calyptia/core-management-plane/pkg/metricstore/influx"
	metricspg "github.com/calyptia/core-management-plane/pkg/metricstore/postgres"
)

// MetricsOptions choose and configure the metric store.
type MetricsOptions struct {
	// Store is "postgres" (the embedded default) or "influxdb".
	Store string

	Retention    time.Duration
	RawRetention time.Duration
	// MaxConns caps the metric store's own PostgreSQL pool, apart from the object store's.
	MaxConns int32

	InfluxURL       string
	InfluxOrg       string
	InfluxBucket    string
	InfluxTokenFile string
}

// NewMetricsOptions returns the defaults.
func NewMetricsOptions() *MetricsOptions {
	return &MetricsOptions{Store: "postgres", Retention: 30 * 24 * time.Hour, RawRetention: 6 * time.Hour, MaxConns: 4,
		InfluxOrg: "cloud-api", InfluxBucket: "cloud-api"}
}

// AddFlags registers the flags.
func (o *MetricsOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Store, "metrics-store", o.Store,
		"Where pipeline metrics are kept: postgres (tables in cloud-api's own database, no extra service) or influxdb (--influxdb-*).")
	fs.DurationVar(&o.Retention, "metrics-retention", o.Retention, "How long the postgres metric store keeps metrics.")
	fs.DurationVar(&o.RawRetention, "metrics-raw-retention", o.RawRetention,
		"How long the postgres metric store keeps every scrape; older metrics are kept as hourly totals.")
	fs.Int32Var(&o.MaxConns, "metrics-postgres-max-conns", o.MaxConns, "Connections of the postgres metric store's own pool.")
	fs.StringVar(&o.InfluxURL, "influxdb-url", o.InfluxURL, "InfluxDB 2 server, e.g. http://influxdb:8086 (with --metrics-store=influxdb).")
	fs.StringVar(&o.InfluxOrg, "influxdb-org", o.InfluxOrg, "InfluxDB organisation.")
	fs.StringVar(&o.InfluxBucket, "influxdb-bucket", o.InfluxBucket, "InfluxDB bucket.")
	fs.StringVar(&o.InfluxTokenFile, "influxdb-token-file", o.InfluxTokenFile, "File holding the InfluxDB API token.")
}

// Validate reports every problem.
func (o *MetricsOptions) Validate() []error {
	var errs []error
	switch o.Store {
	case "postgres":
		if o.RawRetention <= 0 || o.Retention < o.RawRetention {
			errs = append(errs, fmt.Errorf("--metrics-raw-retention %s and --metrics-retention %s: both positive, the raw one no longer", o.RawRetention, o.Retention))
		}
		if o.MaxConns < 1 {
			errs = append(errs, fmt.Errorf("--metrics-postgres-max-conns must be at least 1, got %d", o.MaxConns))
		}
	case "influxdb":
		if o.InfluxURL == "" || o.InfluxOrg == "" || o.InfluxBucket == "" {
			errs = append(errs, errors.New("--metrics-store=influxdb needs --influxdb-url, --influxdb-org and --influxdb-bucket"))
		}
		if o.InfluxTokenFile == "" {
			errs = append(errs, errors.New("--metrics-store=influxdb needs --influxdb-token-file"))
		} else if _, err := os.Stat(o.InfluxTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("--influxdb-token-file: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("--metrics-store %q: must be postgres or influxdb", o.Store))
	}
	return errs
}

// metricStore is the chosen store, and its housekeeping (nil for InfluxDB, which keeps its own
// retention) and what to close.
type metricStore struct {
	metricstore.Store
	maintainer metricstore.Maintainer
	close      func()
}

// NewStore opens the metric store; for postgres, a pool of its own on the object store's database.
func (o *MetricsOptions) NewStore(ctx context.Context, postgresURL string) (*metricStore, error) {
	if o.Store == "influxdb" {
		token, err := os.ReadFile(o.InfluxTokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading --influxdb-token-file: %w", err)
		}
		s, err := influx.New(influx.Options{URL: o.InfluxURL, Org: o.InfluxOrg, Bucket: o.InfluxBucket, Token: strings.TrimSpace(string(token))})
		if err != nil {
			return nil, err
		}
		return &metricStore{Store: s, close: s.Close}, nil
	}
	cfg, err := pgxpool.ParseConfig(postgresURL)
	if err != nil {
		return nil, fmt.Errorf("parsing --postgres-url: %w", err)
	}
	// Its own connections: heavy metric writes must not queue behind, or delay, object reads.
	cfg.MaxConns = o.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting the metric store to PostgreSQL: %w", err)
	}
	s, err := metricspg.New(ctx, pool, metricspg.Options{Retention: o.Retention, RawRetention: o.RawRetention})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("starting the postgres metric store: %w", err)
	}
	return &metricStore{Store: s, maintainer: s, close: pool.Close}, nil
}

// runMaintenance runs the store's housekeeping every five minutes while ctx lasts (the
// leader's controllers' context).
func (m *metricStore) runMaintenance(ctx context.Context) {
	if m == nil || m.maintainer == nil {
		return
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := m.maintainer.Maintain(ctx, time.Now()); err != nil {
			klog.FromContext(ctx).Error(err, "Metric store maintenance failed")
		}
	}, 5*time.Minute)
}
