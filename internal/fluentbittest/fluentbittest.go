// Package fluentbittest finds a real Fluent Bit for the tests that run one: $FLUENT_BIT, else the
// project's bin/fluent-bit (`make fluent-bit` installs it), else fluent-bit on PATH. Without one a
// test skips saying what to set, except under CI=true, where a missing Fluent Bit fails it.
package fluentbittest

import (
	"testing"

	"github.com/calyptia/core-management-plane/internal/testbin"
)

var fluentBit = testbin.Program{Name: "fluent-bit", Env: "FLUENT_BIT", Make: "fluent-bit"}

// Binary returns the path of a Fluent Bit executable, or skips (fails under CI=true) tb.
func Binary(tb testing.TB) string {
	tb.Helper()
	return fluentBit.Path(tb)
}

// Find looks for Fluent Bit as Binary does; why says where it looked when it finds none.
func Find() (path, why string) { return fluentBit.Find() }
