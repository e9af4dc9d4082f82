// Package testbin finds the real programs some tests run beside the project (Fluent Bit,
// VictoriaMetrics): an environment variable, else the project's bin/, else PATH. Without one a
// test skips saying what to set, except under CI=true, where a missing program fails it.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Program is a program tests need.
type Program struct {
	// Name is the executable's name in bin/ and on PATH.
	Name string
	// Env names the variable that may point at it.
	Env string
	// Make is the make target that installs it into bin/.
	Make string
}

// Path returns the program's path, or skips (fails under CI=true) tb.
func (p Program) Path(tb testing.TB) string {
	tb.Helper()
	path, why := p.Find()
	if path != "" {
		return path
	}
	msg := "no " + p.Name + ": " + why + "; set " + p.Env + " or run `make " + p.Make + "`"
	if strings.EqualFold(os.Getenv("CI"), "true") {
		tb.Fatal(msg + " (required with CI=true)")
	}
	tb.Skip(msg)
	return ""
}

// Find looks for the program; why says where it looked when it finds none.
func (p Program) Find() (path, why string) {
	if v := os.Getenv(p.Env); v != "" {
		if _, err := os.Stat(v); err != nil {
			return "", p.Env + "=" + v + ": " + err.Error()
		}
		return absolute(v), ""
	}
	if root := repoRoot(); root != "" {
		if c := filepath.Join(root, "bin", p.Name); isExecutable(c) {
			return c, ""
		}
	}
	if c, err := exec.LookPath(p.Name); err == nil {
		return absolute(c), ""
	}
	return "", "none in $" + p.Env + ", bin/" + p.Name + " or PATH"
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
