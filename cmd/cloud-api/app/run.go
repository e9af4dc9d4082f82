package app

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/meta"
	genericrest "k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/calyptia/core-management-plane/pkg/apiserver"
	"github.com/calyptia/core-management-plane/pkg/controller/liveness"
	"github.com/calyptia/core-management-plane/pkg/controller/pipelinerefs"
	"github.com/calyptia/core-management-plane/pkg/controller/registryinformers"
	clientset "github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
	"github.com/calyptia/core-management-plane/pkg/storage/postgres"
)

// controllerWorkers is how many pipelines the references controller checks at once.
const controllerWorkers = 2

// Run connects to PostgreSQL, serves the API until ctx ends, and runs the
// controllers (under leader election unless standalone).
func (o *Options) Run(ctx context.Context) error {
	pool, err := o.Postgres.NewPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	backend, err := postgres.NewBackend(ctx, pool, postgres.Options{})
	if err != nil {
		return fmt.Errorf("starting PostgreSQL storage backend: %w", err)
	}
	defer backend.Close()

	metrics, err := o.Metrics.NewStore(ctx, o.Postgres.URL)
	if err != nil {
		return err
	}
	defer metrics.close()

	cfg, err := o.Config(ctx, backend)
	if err != nil {
		return err
	}
	cfg.ExtraConfig.Metrics = metrics
	server, err := cfg.Complete().New()
	if err != nil {
		return err
	}

	// Kubernetes informers for admission (webhooks, policies); nil standalone.
	if f := cfg.GenericConfig.SharedInformerFactory; f != nil {
		server.GenericAPIServer.AddPostStartHookOrDie("start-kube-informers", func(hc genericapiserver.PostStartHookContext) error {
			f.Start(hc.Done())
			return nil
		})
	}
	kubeConfig := cfg.GenericConfig.ClientConfig
	server.GenericAPIServer.AddPostStartHookOrDie("start-cloud-api-controllers", func(hc genericapiserver.PostStartHookContext) error {
		// The controllers talk to this server through the privileged loopback
		// connection, so they need no credentials of their own.
		go o.runControllers(hc.Context, hc.LoopbackClientConfig, kubeConfig, server.Storage, metrics)
		return nil
	})

	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// runControllers runs the controllers while this replica leads, campaigning
// again after losing the lease, until ctx ends.
func (o *Options) runControllers(ctx context.Context, loopback, kubeConfig *rest.Config, storage map[string]genericrest.Storage, metrics *metricStore) {
	run := func(ctx context.Context) {
		if err := startControllers(ctx, loopback, storage, metrics); err != nil {
			klog.ErrorS(err, "Controllers stopped")
		}
	}
	if !o.LeaderElection.LeaderElect {
		klog.InfoS("Running controllers without leader election")
		run(ctx)
		return
	}
	lec, err := o.leaderElectionConfig(kubeConfig, run)
	if err != nil {
		// Serving the API matters more than its controllers: report, do not exit.
		klog.ErrorS(err, "Cannot run leader election; controllers are not running")
		return
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, *lec)
	}
}

func (o *Options) leaderElectionConfig(kubeConfig *rest.Config, run func(context.Context)) (*leaderelection.LeaderElectionConfig, error) {
	if kubeConfig == nil {
		return nil, fmt.Errorf("leader election needs a kube-apiserver (--kubeconfig or in-cluster config)")
	}
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(kubeConfig, "cloud-api-leader-election"))
	if err != nil {
		return nil, fmt.Errorf("creating leader election client: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("getting hostname for the leader election identity: %w", err)
	}
	// The suffix keeps two processes on one host apart.
	id := host + "_" + uuid.NewString()
	lock, err := resourcelock.New(o.LeaderElection.ResourceLock,
		o.LeaderElection.ResourceNamespace, o.LeaderElection.ResourceName,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, fmt.Errorf("creating leader election lock: %w", err)
	}
	return &leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaderElection.LeaseDuration.Duration,
		RenewDeadline:   o.LeaderElection.RenewDeadline.Duration,
		RetryPeriod:     o.LeaderElection.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            o.LeaderElection.ResourceName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: run,
			OnStoppedLeading: func() { klog.InfoS("Stopped leading; controllers stopped", "identity", id) },
			OnNewLeader:      func(leader string) { klog.V(2).InfoS("Controller leader", "identity", leader) },
		},
	}, nil
}

// startControllers runs every controller until ctx ends. They read from this
// server's storage and write through its loopback connection.
func startControllers(ctx context.Context, loopback *rest.Config, storage map[string]genericrest.Storage, metrics *metricStore) error {
	client, err := clientset.NewForConfig(rest.AddUserAgent(rest.CopyConfig(loopback), "cloud-api-controllers"))
	if err != nil {
		return fmt.Errorf("creating loopback client: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute, informers.WithTransform(stripManagedFields))
	if err := registryinformers.Register(factory, apiserver.Scheme, storage); err != nil {
		return fmt.Errorf("reading from the registry: %w", err)
	}
	refs := pipelinerefs.NewController(client, factory)
	live := liveness.NewController(client, factory)
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	var wg sync.WaitGroup
	wg.Go(func() { refs.Run(ctx, controllerWorkers) })
	wg.Go(func() { live.Run(ctx, 1) })
	wg.Go(func() { metrics.runMaintenance(ctx) })
	wg.Wait()
	return nil
}

// stripManagedFields drops what the controllers never read from their informers' copies, as
// kube-controller-manager does; their status updates keep the stored managed fields.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
