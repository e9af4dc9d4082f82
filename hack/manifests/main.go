// Command manifests renders artifacts/deploy from the Helm chart (charts/calyptia-core with
// charts/deploy-values.yaml), so the chart is the one source of the deployment objects:
// `make manifests` runs it, and a test of package charts fails while the committed files
// differ from what it writes.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/calyptia/core-management-plane/charts"
)

func main() {
	if err := run("."); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	files, err := charts.DeployManifests(root)
	if err != nil {
		return err
	}
	dir := filepath.Join(root, charts.DeployDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The directory is the chart's output only: files of templates that are gone go too.
	old, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if _, ok := files[filepath.Base(f)]; !ok {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return err
		}
		fmt.Println(filepath.Join(charts.DeployDir, n))
	}
	return nil
}
