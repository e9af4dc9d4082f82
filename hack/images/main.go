// Command images builds an OCI image tarball of every binary under cmd/ (see
// internal/ociimage): each binary is compiled static (CGO_ENABLED=0), put in an image built
// from scratch with a non-root user and the build machine's CA certificates, written to
// OUT/NAME.tar, read back and checked. No container daemon and no base image are needed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/calyptia/core-management-plane/internal/ociimage"
)

func main() {
	var (
		out      = flag.String("out", "bin/images", "directory for the binaries and NAME.tar")
		registry = flag.String("registry", "ghcr.io/calyptia", "repository prefix of the image names")
		version  = flag.String("version", "", "image tag, and the binaries' version (pkg/version) with a leading v")
		revision = flag.String("revision", "", "VCS revision for the org.opencontainers.image.revision label")
		ca       = flag.String("ca-certificates", ociimage.DefaultCACertificates, "PEM bundle put in every image")
		arch     = flag.String("arch", runtime.GOARCH, "GOARCH to build for")
	)
	flag.Parse()
	if err := run(*out, *registry, *version, *revision, *ca, *arch, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

// commands lists cmd/NAME directories holding a main package, so a new binary gets an image
// without a change here.
func commands() ([]string, error) {
	dirs, err := filepath.Glob("cmd/*/main.go")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	sort.Strings(names)
	return names, nil
}

func run(out, registry, version, revision, ca, arch string, only []string) error {
	if version == "" {
		return fmt.Errorf("-version is required")
	}
	names := only
	if len(names) == 0 {
		var err error
		if names, err = commands(); err != nil {
			return err
		}
	}
	// SOURCE_DATE_EPOCH (the commit time, from the Makefile) makes images reproducible.
	created := time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		created = time.Unix(sec, 0)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, n := range names {
		bin := filepath.Join(out, n)
		ldflags := "-s -w -X github.com/calyptia/core-management-plane/pkg/version.Version=v" + strings.TrimPrefix(version, "v")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/"+n)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building cmd/%s: %w", n, err)
		}
		img, err := ociimage.Build(ociimage.Spec{
			Name: n, Binary: bin, CACertificates: ca, Architecture: arch, Created: created,
			Labels: map[string]string{
				"org.opencontainers.image.title":    n,
				"org.opencontainers.image.version":  version,
				"org.opencontainers.image.revision": revision,
				"org.opencontainers.image.source":   "https://github.com/calyptia/core-management-plane",
			},
		})
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		ref := registry + "/" + n + ":" + version
		file := filepath.Join(out, n+".tar")
		if err := ociimage.WriteTarball(img, ref, file); err != nil {
			return err
		}
		// Read back what was written, as a user's tools would.
		c, err := ociimage.Read(file, ref)
		if err != nil {
			return err
		}
		if err := c.Check(); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		st, err := os.Stat(file)
		if err != nil {
			return err
		}
		fmt.Printf("%s  %s  %.1f MiB  %s\n", file, ref, float64(st.Size())/(1<<20), c.Digest)
	}
	return nil
}
