package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/agent"
	"github.com/calyptia/core-management-plane/pkg/dataplane/fbapi"
	"github.com/calyptia/core-management-plane/pkg/dataplane/host"
	"github.com/calyptia/core-management-plane/pkg/dataplane/kube"
	"github.com/calyptia/core-management-plane/pkg/dataplane/reloader"
	"github.com/calyptia/core-management-plane/pkg/dataplane/scrape"
	clientset "github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/pkg/version"
)

const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Run runs the agent until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	mgmt, ns, err := loadConfig(o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("management plane kubeconfig: %w", err)
	}
	if o.Namespace != "" {
		ns = o.Namespace
	}
	if ns == "" {
		return errors.New("no namespace: set --namespace")
	}
	mgmt.UserAgent = "core-operator/" + version.Get()
	mgmt.QPS, mgmt.Burst = o.APIQPS, o.APIBurst
	client, err := clientset.NewForConfig(mgmt)
	if err != nil {
		return err
	}
	events, err := kubernetes.NewForConfig(mgmt)
	if err != nil {
		return err
	}
	ci, err := waitForCoreInstance(ctx, client, ns, o.CoreInstance)
	if err != nil {
		return err
	}
	logger = logger.WithValues("coreInstance", klog.KObj(ci), "mode", ci.Spec.Mode)
	ctx = klog.NewContext(ctx, logger)

	// The runtime tells the agent of changes; the agent exists only after the runtime does.
	var ag atomic.Pointer[agent.Agent]
	notify := func(k dataplane.Key) {
		if a := ag.Load(); a != nil {
			a.Enqueue(k)
		}
	}
	cfg := agent.Config{
		Client: client, Events: events, Namespace: ns, CoreInstance: o.CoreInstance,
		HeartbeatInterval: o.HeartbeatInterval, Workers: o.Workers,
	}
	var targets scrape.Targets
	switch ci.Spec.Mode {
	case v1.CoreInstanceModeExternal:
		rt, err := host.New(ctx, host.Options{
			StateDir: o.StateDir, Binary: o.FluentBit, AdvertiseAddress: o.AdvertiseAddress, TapListen: o.TapListen, Notify: notify,
			CrashLimit: o.CrashLimit, BackoffMax: o.RestartBackoff,
		})
		if err != nil {
			return err
		}
		fbVersion, err := rt.FluentBitVersion(ctx)
		if err != nil {
			return err
		}
		hostname, _ := os.Hostname()
		cfg.Runtime, targets = rt, rt
		cfg.Describe = func(*v1.CoreInstance) agent.Info {
			return agent.Info{AgentVersion: version.Get(), FluentBitVersion: fbVersion,
				Cluster: &v1.CoreInstanceCluster{Name: hostname, Platform: goruntime.GOOS + "/" + goruntime.GOARCH}}
		}
		logger.Info("Running pipelines as processes", "fluentBit", rt.Binary(), "version", fbVersion, "stateDir", o.StateDir)
	default:
		target, targetNS, err := o.targetConfig(mgmt, ns, ci)
		if err != nil {
			return err
		}
		kc, err := kubernetes.NewForConfig(target)
		if err != nil {
			return err
		}
		cluster := &v1.CoreInstanceCluster{Name: o.ClusterName, Namespace: targetNS}
		if sv, err := kc.Discovery().ServerVersion(); err == nil {
			cluster.Version, cluster.Platform = sv.GitVersion, sv.Platform
		} else {
			logger.Error(err, "Reading the target cluster's version")
		}
		rt := kube.New(kc, kube.Target{
			Namespace: targetNS, CoreInstance: o.CoreInstance, SourceNamespace: ns,
			Image: o.FluentBitImage, ReloaderImage: o.ReloaderImage,
		}, notify)
		if err := rt.Start(ctx); err != nil {
			return err
		}
		defer rt.Shutdown()
		cfg.Runtime, targets = rt, rt
		cfg.Describe = func(ci *v1.CoreInstance) agent.Info {
			image := o.FluentBitImage
			if ci.Spec.Image != "" {
				image = ci.Spec.Image
			}
			return agent.Info{AgentVersion: version.Get(), FluentBitVersion: imageVersion(image), Cluster: cluster}
		}
		logger.Info("Running pipelines as workloads", "targetNamespace", targetNS, "cluster", target.Host)
	}

	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	ag.Store(a)
	if o.HealthAddress != "" {
		go serveHealth(ctx, o.HealthAddress)
	}
	if o.MetricsInterval > 0 {
		s := &scrape.Scraper{Client: client, Namespace: ns, CoreInstance: o.CoreInstance, Targets: targets, Interval: o.MetricsInterval}
		go s.Run(ctx)
	}
	return a.Run(ctx)
}

// loadConfig reads a kubeconfig (or the in-cluster config when path is empty) and the
// namespace it implies.
func loadConfig(path string) (*rest.Config, string, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
		}
		b, _ := os.ReadFile(serviceAccountNamespaceFile)
		return cfg, strings.TrimSpace(string(b)), nil
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, "", err
	}
	return cfg, ns, nil
}

// targetConfig is the cluster and namespace workloads go to.
func (o *Options) targetConfig(mgmt *rest.Config, ns string, ci *v1.CoreInstance) (*rest.Config, string, error) {
	cfg, own := rest.CopyConfig(mgmt), ns
	if o.TargetKubeconfig != "" {
		var err error
		if cfg, own, err = loadConfig(o.TargetKubeconfig); err != nil {
			return nil, "", fmt.Errorf("target kubeconfig: %w", err)
		}
		cfg.UserAgent, cfg.QPS, cfg.Burst = mgmt.UserAgent, mgmt.QPS, mgmt.Burst
	} else if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil && o.Kubeconfig == "" {
		own = strings.TrimSpace(string(b))
	}
	switch {
	case o.TargetNamespace != "":
		return cfg, o.TargetNamespace, nil
	case ci.Spec.Namespace != "":
		return cfg, ci.Spec.Namespace, nil
	case own != "":
		return cfg, own, nil
	}
	return nil, "", errors.New("no target namespace: set --target-namespace or the core instance's spec.namespace")
}

// waitForCoreInstance reads the core instance, waiting while it does not exist yet (an agent
// may be installed before the instance is created).
func waitForCoreInstance(ctx context.Context, client clientset.Interface, ns, name string) (*v1.CoreInstance, error) {
	var ci *v1.CoreInstance
	logged := false
	err := wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().CoreInstances(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			ci = got
			return true, nil
		case apierrors.IsNotFound(err):
			if !logged {
				klog.FromContext(ctx).Info("Waiting for the core instance to be created", "coreInstance", klog.KRef(ns, name))
				logged = true
			}
			return false, nil
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			return false, fmt.Errorf("reading core instance %s/%s (does the agent have the calyptia-core:data-plane role there?): %w", ns, name, err)
		}
		klog.FromContext(ctx).Error(err, "Reading the core instance; retrying")
		return false, nil
	})
	return ci, err
}

// imageVersion is an image's tag ("26.8.5" of ghcr.io/calyptia/core-fluent-bit:26.8.5).
func imageVersion(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return strings.TrimPrefix(image[i+1:], "v")
	}
	return ""
}

func serveHealth(ctx context.Context, addr string) {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.FromContext(ctx).Error(err, "Health endpoint failed", "address", addr)
	}
}

// Run runs the HotReload sidecar until ctx ends.
func (o *ReloadOptions) Run(ctx context.Context) error {
	addr, err := o.base()
	if err != nil {
		return err
	}
	r := &reloader.Reloader{Dir: o.ConfigDir, Client: fbapi.New(addr), Interval: o.Interval}
	return r.Run(ctx)
}
