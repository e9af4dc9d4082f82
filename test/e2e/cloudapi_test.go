//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/calyptia/core-management-plane/internal/pgtest"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// cloud-api is built, installed and started once, by the first test that needs it.
var (
	cloudOnce     sync.Once
	cloudErr      error
	aggregation   *framework.Aggregation
	cloudBinary   string
	cloudDB       string
	cloudReplicas []*framework.CloudAPI
	cloudMu       sync.Mutex
)

// primaryCloudAPI returns the replica the APIService points at, starting the
// aggregated API the first time.
func primaryCloudAPI(t testing.TB) *framework.CloudAPI {
	t.Helper()
	cloudOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// E2E_CLOUD_API_BINARY runs a cloud-api built elsewhere, e.g. an older commit for a
		// benchmark's before and after.
		if cloudBinary = os.Getenv("E2E_CLOUD_API_BINARY"); cloudBinary == "" {
			if cloudBinary, cloudErr = framework.BuildCloudAPI(ctx, repoRoot, filepath.Join(cluster.Dir, "bin")); cloudErr != nil {
				return
			}
		}
		if cloudDB, cloudErr = pgtest.CreateDatabase(ctx, pgtest.ServerURL()); cloudErr != nil {
			return
		}
		if aggregation, cloudErr = cluster.InstallCloudAPI(ctx, admin, framework.InstallOptions{
			DeployDir: filepath.Join(repoRoot, "artifacts", "deploy"),
		}); cloudErr != nil {
			return
		}
		var s *framework.CloudAPI
		if s, cloudErr = startReplica(ctx, "cloud-api-0"); cloudErr != nil {
			return
		}
		cloudErr = aggregation.Register(ctx, s)
	})
	if cloudErr != nil {
		t.Fatalf("setting up cloud-api behind kube-apiserver: %v", cloudErr)
	}
	return cloudReplicas[0]
}

// startReplica starts another cloud-api on the same database.
func startReplica(ctx context.Context, name string) (*framework.CloudAPI, error) {
	s, err := aggregation.Start(ctx, name, cloudBinary, cloudDB)
	if err != nil {
		return nil, err
	}
	cloudMu.Lock()
	cloudReplicas = append(cloudReplicas, s)
	cloudMu.Unlock()
	return s, nil
}

func stopCloudAPI() {
	cloudMu.Lock()
	defer cloudMu.Unlock()
	for _, s := range cloudReplicas {
		s.Stop()
	}
	if cloudDB != "" {
		_ = pgtest.DropDatabase(context.Background(), pgtest.ServerURL(), cloudDB)
	}
}
