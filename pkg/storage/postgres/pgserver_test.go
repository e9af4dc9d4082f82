package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// privatePostgres is a PostgreSQL instance a test starts for itself, so that
// it can kill its connections and restart it without disturbing the shared
// server every other test uses.
type privatePostgres struct {
	binDir  string
	dir     string // owned by runAs; holds data, socket and log
	dataDir string
	sockDir string
	logFile string
	port    int
	runAs   string // OS user that runs PostgreSQL; "" for the current user
}

// postgresBinDir finds initdb and pg_ctl: $PG_BINDIR, the newest
// /usr/lib/postgresql/<version>/bin, or $PATH.
func postgresBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PG_BINDIR=%s: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("initdb not found in $PG_BINDIR, /usr/lib/postgresql/*/bin or $PATH")
}

// startPrivatePostgres initialises and starts a PostgreSQL instance on a
// free local port; it is stopped and removed when t ends. PostgreSQL refuses
// to run as root, so under root it runs as the postgres (or nobody) user.
// Without PostgreSQL's server binaries the test is skipped, saying so, but
// fails under CI=true, where the restart tests must not silently not run;
// any other failure fails t.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	binDir, err := postgresBinDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the PostgreSQL restart tests need PostgreSQL's server binaries: %v", err)
		}
		t.Skipf("skipping: the PostgreSQL restart tests need PostgreSQL's server binaries (initdb, pg_ctl): %v", err)
	}
	p := &privatePostgres{binDir: binDir}
	base := ""
	if os.Geteuid() == 0 {
		// Directories made by the test harness may be closed to other users; /tmp is not.
		base = "/tmp"
		for _, name := range []string{"postgres", "nobody"} {
			if _, err := user.Lookup(name); err == nil {
				p.runAs = name
				break
			}
		}
		if p.runAs == "" {
			t.Fatal("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")
		}
	}
	p.dir, err = os.MkdirTemp(base, "pgfault-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(p.dir) })
	p.dataDir = filepath.Join(p.dir, "data")
	p.sockDir = filepath.Join(p.dir, "sock")
	p.logFile = filepath.Join(p.dir, "postgres.log")
	if err := os.Mkdir(p.sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if p.runAs != "" {
		u, err := user.Lookup(p.runAs)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{p.dir, p.sockDir} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatalf("handing %s to %s: %v", d, p.runAs, err)
			}
		}
	}
	if out, err := p.run("initdb", "-D", p.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb failed: %v\n%s", err, out)
	}
	// Another process may take the free port before the server binds it: try a few.
	for attempt := 1; ; attempt++ {
		p.port = freePort(t)
		err := p.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v", attempt, err)
	}
	t.Cleanup(func() {
		if err := p.stop("immediate"); err != nil {
			t.Logf("stopping private PostgreSQL: %v", err)
		}
	})
	return p
}

// run runs one of PostgreSQL's programs as runAs, with a time bound.
func (p *privatePostgres) run(program string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(p.binDir, program)
	var cmd *exec.Cmd
	if p.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.runAs, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	// The caller's working directory may be closed to runAs.
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *privatePostgres) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=60 -c shared_buffers=16MB", p.port, p.sockDir)
	if out, err := p.run("pg_ctl", "-D", p.dataDir, "-l", p.logFile, "-w", "-t", "60", "-o", opts, "start"); err != nil {
		return fmt.Errorf("starting private PostgreSQL: %v\n%s\nserver log:\n%s", err, out, p.log())
	}
	return nil
}

// stop stops the server in the given pg_ctl shutdown mode (fast, immediate).
func (p *privatePostgres) stop(mode string) error {
	if out, err := p.run("pg_ctl", "-D", p.dataDir, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("stopping private PostgreSQL (%s): %v\n%s", mode, err, out)
	}
	return nil
}

func (p *privatePostgres) log() string {
	b, err := os.ReadFile(p.logFile)
	if err != nil {
		return err.Error()
	}
	s := string(b)
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// url is the connection URL of the server's postgres database.
func (p *privatePostgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", p.port)
}

// query runs sql on a connection of its own and scans one row into dest.
func (p *privatePostgres) query(ctx context.Context, sql string, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url())
	if err != nil {
		return fmt.Errorf("connecting to private PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		return fmt.Errorf("%s: %w", strings.Fields(sql)[0], err)
	}
	return nil
}

// freePort asks the kernel for a free local TCP port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
