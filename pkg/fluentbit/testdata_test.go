package fluentbit

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdataDir finds shared/testdata/fluentbit: $FLUENTBIT_TESTDATA, else the first
// shared/testdata/fluentbit found walking up from the package directory (the work tree keeps
// shared/ beside the clone, so it is found as <clone>/../shared/testdata/fluentbit).
func testdataDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FLUENTBIT_TESTDATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		cand := filepath.Join(dir, "shared", "testdata", "fluentbit")
		if st, err := os.Stat(filepath.Join(cand, "corpus", "INDEX.tsv")); err == nil && !st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("shared/testdata/fluentbit not found above the package directory; set FLUENTBIT_TESTDATA")
		}
		dir = parent
	}
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
