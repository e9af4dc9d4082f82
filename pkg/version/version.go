// Package version tells which build of the project is running. Release builds
// set Version with -ldflags "-X github.com/calyptia/core-management-plane/pkg/version.Version=v1.2.3";
// other builds report what the Go toolchain recorded (module version or VCS revision).
package version

import (
	"runtime/debug"
	"sync"
)

// Version is set at link time for release builds.
var Version = ""

var (
	once   sync.Once
	cached string
)

// Get returns the version of the running binary: the link-time Version, else the
// main module's version, else "devel+<revision>" from the VCS stamp, else "devel".
func Get() string {
	once.Do(func() { cached = fromBuild(Version, readBuildInfo()) })
	return cached
}

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

func fromBuild(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi == nil {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel+" + rev
}
