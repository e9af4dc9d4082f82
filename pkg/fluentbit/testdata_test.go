package fluentbit

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdataDir is the Fluent Bit corpus (shared/testdata/fluentbit of the workspace this
// project is steered from): $FLUENTBIT_TESTDATA, which `make test` sets to
// ../shared/testdata/fluentbit when that exists and .ci/run always sets. It is never searched
// for: a clone elsewhere must not pick up whatever shared/ lies above it. Without it the test
// skips saying so; with CI=true it fails, as a missing corpus would hide regressions.
func testdataDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("FLUENTBIT_TESTDATA")
	if d == "" {
		msg := "no Fluent Bit corpus: set FLUENTBIT_TESTDATA to a copy of shared/testdata/fluentbit (make test does when ../shared/testdata/fluentbit exists)"
		if strings.EqualFold(os.Getenv("CI"), "true") {
			t.Fatal(msg + " (required with CI=true)")
		}
		t.Skip(msg)
	}
	if st, err := os.Stat(filepath.Join(d, "corpus", "INDEX.tsv")); err != nil || st.IsDir() {
		// Set but wrong is a mistake to report, not a reason to skip.
		t.Fatalf("FLUENTBIT_TESTDATA=%s holds no corpus/INDEX.tsv: %v", d, err)
	}
	return d
}

// corpusRow is one line of corpus/INDEX.tsv.
type corpusRow struct {
	File, Repo, Path, Commit string
	Format                   Format
	Expected, Note           string
	DryRun, Method, Detail   string
}

func readCorpus(t testing.TB) (dir string, rows []corpusRow) {
	t.Helper()
	dir = filepath.Join(testdataDir(t), "corpus")
	f, err := os.Open(filepath.Join(dir, "INDEX.tsv"))
	if err != nil {
		t.Fatalf("open corpus index: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		for len(c) < 10 {
			c = append(c, "")
		}
		rows = append(rows, corpusRow{
			File: c[0], Repo: c[1], Path: c[2], Commit: c[3], Format: Format(c[4]),
			Expected: c[5], Note: c[6], DryRun: c[7], Method: c[8], Detail: c[9],
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read corpus index: %v", err)
	}
	if len(rows) == 0 {
		t.Fatalf("corpus index is empty")
	}
	return dir, rows
}

func readCorpusFile(t testing.TB, dir string, r corpusRow) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, r.File))
	if err != nil {
		t.Fatalf("read %s: %v", r.File, err)
	}
	return b
}
