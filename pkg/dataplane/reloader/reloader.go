// Package reloader is the HotReload sidecar of Kubernetes-mode pipelines: it watches the
// mounted ConfigMap directory and asks the Fluent Bit beside it to hot-reload when the
// content changes, so that a new config reaches running pods without restarting them.
package reloader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/calyptia/core-management-plane/pkg/dataplane/fbapi"
)

// Reloader watches one directory for one Fluent Bit.
type Reloader struct {
	Dir      string
	Client   *fbapi.Client
	Interval time.Duration
}

// Run polls the directory every Interval until ctx ends. Polling, not inotify: the kubelet
// updates ConfigMap volumes by swapping a symlink, which file watches follow poorly.
func (r *Reloader) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	applied, err := Digest(r.Dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", r.Dir, err)
	}
	logger.Info("Watching config", "dir", r.Dir, "digest", applied)
	tick := time.NewTicker(r.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := Digest(r.Dir)
		if err != nil {
			logger.Error(err, "Reading config", "dir", r.Dir)
			continue
		}
		if cur == applied {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := r.Client.Reload(rctx)
		cancel()
		if err != nil {
			// Kept unapplied: the next tick tries again.
			logger.Error(err, "Hot reload failed", "digest", cur)
			continue
		}
		logger.Info("Hot-reloaded", "digest", cur, "reloads", n)
		applied = cur
	}
}

// Digest hashes the names and contents of the directory's visible files (a ConfigMap volume's
// keys; its ..data bookkeeping entries start with a dot).
func Digest(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n)) // follows the volume's symlinks
		if err != nil || fi.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d:%s;%d:", len(n), n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
