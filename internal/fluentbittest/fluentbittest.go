// Package fluentbittest finds a real Fluent Bit for the tests that run one: $FLUENT_BIT, else the
// project's bin/fluent-bit (`make fluent-bit` installs it), else fluent-bit on PATH. Without one a
// test skips saying what to set, except under CI=true, where a missing Fluent Bit fails it.
package fluentbittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Binary returns the path of a Fluent Bit executable, or skips (fails under CI=true) tb.
func Binary(tb testing.TB) string {
	tb.Helper()
	path, why := Find()
	if path != "" {
		return path
	}
	msg := "no Fluent Bit: " + why + "; set FLUENT_BIT to a fluent-bit executable or run `make fluent-bit`"
	if strings.EqualFold(os.Getenv("CI"), "true") {
		tb.Fatal(msg + " (required with CI=true)")
	}
	tb.Skip(msg)
	return ""
}

// Find looks for Fluent Bit as Binary does; why says where it looked when it finds none.
func Find() (path, why string) {
	if p := os.Getenv("FLUENT_BIT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", "FLUENT_BIT=" + p + ": " + err.Error()
		}
		return absolute(p), ""
	}
	if root := repoRoot(); root != "" {
		if p := filepath.Join(root, "bin", "fluent-bit"); isExecutable(p) {
			return p, ""
		}
	}
	if p, err := exec.LookPath("fluent-bit"); err == nil {
		return absolute(p), ""
	}
	return "", "none in $FLUENT_BIT, bin/fluent-bit or PATH"
}

func absolute(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// repoRoot walks up from the working directory (a test's package directory) to go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
