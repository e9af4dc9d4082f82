// Package app holds the flags of core-operator and wires them into the agent of
// pkg/dataplane/agent and the runtime its core instance's mode needs.
package app

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/calyptia/core-management-plane/pkg/version"
)

// DefaultFluentBitImage runs pipelines whose pipeline and core instance name no image.
const DefaultFluentBitImage = "ghcr.io/calyptia/core-fluent-bit:26.8.5"

// Options are every flag of core-operator.
type Options struct {
	// The management plane.
	Kubeconfig   string
	Namespace    string
	CoreInstance string

	// Kubernetes mode.
	TargetKubeconfig string
	TargetNamespace  string
	ClusterName      string
	FluentBitImage   string
	ReloaderImage    string

	// Host mode.
	FluentBit        string
	StateDir         string
	AdvertiseAddress string
	TapListen        string
	CrashLimit       int
	RestartBackoff   time.Duration

	// The agent.
	HeartbeatInterval time.Duration
	MetricsInterval   time.Duration
	Workers           int
	HealthAddress     string
	// Client rate limits, for the management plane and the target cluster each.
	APIQPS   float32
	APIBurst int
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		FluentBitImage:    DefaultFluentBitImage,
		ReloaderImage:     "ghcr.io/calyptia/core-operator:" + imageTag(version.Get()),
		FluentBit:         "fluent-bit",
		StateDir:          "/var/lib/calyptia-core",
		CrashLimit:        5,
		RestartBackoff:    time.Minute,
		HeartbeatInterval: 30 * time.Second,
		MetricsInterval:   30 * time.Second,
		Workers:           4,
		// client-go's defaults (5 and 10) would make a thousand pipelines take minutes.
		APIQPS:   50,
		APIBurst: 100,
	}
}

// imageTag is the agent's own image tag: its version, or latest for development builds.
func imageTag(v string) string {
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		return v
	}
	return "latest"
}

// Flags returns the flags in named sections, for help output.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("management plane")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig of the management plane (the cluster serving core.calyptia.com). Empty: the in-cluster ServiceAccount. "+
			"It needs the calyptia-core:data-plane role in the core instance's namespace.")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace,
		"Namespace of the core instance. Empty: the kubeconfig context's namespace, or the pod's own.")
	fs.StringVar(&o.CoreInstance, "core-instance", o.CoreInstance, "Name of the core instance whose pipelines to run (required).")

	fs = fss.FlagSet("kubernetes mode")
	fs.StringVar(&o.TargetKubeconfig, "target-kubeconfig", o.TargetKubeconfig,
		"Kubeconfig of the cluster pipelines run in. Empty: the management plane's cluster.")
	fs.StringVar(&o.TargetNamespace, "target-namespace", o.TargetNamespace,
		"Namespace of the pipelines' workloads. Empty: the core instance's spec.namespace, else the agent's own namespace.")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "Name of the target cluster, as heartbeats report it.")
	fs.StringVar(&o.FluentBitImage, "fluent-bit-image", o.FluentBitImage,
		"Fluent Bit image of pipelines whose pipeline and core instance name none.")
	fs.StringVar(&o.ReloaderImage, "reloader-image", o.ReloaderImage,
		"Image of the HotReload sidecar (this agent's image; it runs `core-operator reload`).")

	fs = fss.FlagSet("host mode")
	fs.StringVar(&o.FluentBit, "fluent-bit", o.FluentBit, "The fluent-bit executable for pipelines of External core instances: a path, or a name to look up in PATH.")
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir,
		"Directory holding each pipeline's config (with secret values: kept readable by this user only), buffers and logs.")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress,
		"Host name or address in the pipelines' endpoints. Empty: this host's name.")
	fs.StringVar(&o.TapListen, "tap-listen", "127.0.0.1",
		"Address the pipelines' taps (vivo_exporter) listen on; cloud-api reads them there (GET pipelines/NAME/tap). "+
			"The default lets only a cloud-api on this host read them; 0.0.0.0 lets anyone who reaches the host.")
	fs.IntVar(&o.CrashLimit, "crash-limit", o.CrashLimit, "Consecutive crashes of a pipeline's fluent-bit after which the pipeline is Failed (it keeps being restarted).")
	fs.DurationVar(&o.RestartBackoff, "restart-backoff-max", o.RestartBackoff, "Longest wait before restarting a crashed fluent-bit; waits double from 1s.")

	fs = fss.FlagSet("agent")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", o.HeartbeatInterval,
		"How often to report to the core instance's status. The management plane marks the instance Unreachable after 35s without one.")
	fs.DurationVar(&o.MetricsInterval, "metrics-interval", o.MetricsInterval,
		"How often to scrape each pipeline's Fluent Bit (/api/v2/metrics/prometheus) and report to coreinstances/NAME/metrics. 0: never.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Pipelines synced at once.")
	fs.StringVar(&o.HealthAddress, "health-address", o.HealthAddress, "Address of the /healthz and /readyz endpoints, e.g. :8081. Empty: none.")
	fs.Float32Var(&o.APIQPS, "kube-api-qps", o.APIQPS, "Requests per second to each Kubernetes API (management plane, target cluster).")
	fs.IntVar(&o.APIBurst, "kube-api-burst", o.APIBurst, "Bursts of requests allowed above --kube-api-qps.")
	return fss
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() []error {
	var errs []error
	if o.CoreInstance == "" {
		errs = append(errs, errors.New("--core-instance is required"))
	} else if msgs := validation.IsDNS1123Label(o.CoreInstance); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--core-instance %q: %v", o.CoreInstance, msgs))
	}
	for flag, ns := range map[string]string{"--namespace": o.Namespace, "--target-namespace": o.TargetNamespace} {
		if ns != "" {
			if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("%s %q: %v", flag, ns, msgs))
			}
		}
	}
	if o.HeartbeatInterval < time.Second || o.HeartbeatInterval > 30*time.Second {
		errs = append(errs, fmt.Errorf("--heartbeat-interval %s: must be between 1s and 30s (the management plane waits 35s)", o.HeartbeatInterval))
	}
	if o.MetricsInterval != 0 && o.MetricsInterval < time.Second {
		errs = append(errs, fmt.Errorf("--metrics-interval %s: must be 0 (off) or at least 1s", o.MetricsInterval))
	}
	if o.APIQPS <= 0 || o.APIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps %v and --kube-api-burst %d: must be positive", o.APIQPS, o.APIBurst))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers %d: must be at least 1", o.Workers))
	}
	if o.CrashLimit < 1 {
		errs = append(errs, fmt.Errorf("--crash-limit %d: must be at least 1", o.CrashLimit))
	}
	if o.RestartBackoff < time.Second {
		errs = append(errs, fmt.Errorf("--restart-backoff-max %s: must be at least 1s", o.RestartBackoff))
	}
	if o.StateDir == "" {
		errs = append(errs, errors.New("--state-dir must not be empty"))
	}
	return errs
}

// ReloadOptions are the flags of `core-operator reload`.
type ReloadOptions struct {
	ConfigDir string
	URL       string
	Interval  time.Duration
}

// NewReloadOptions returns the defaults.
func NewReloadOptions() *ReloadOptions {
	return &ReloadOptions{ConfigDir: "/fluent-bit/etc/pipeline", URL: "http://127.0.0.1:2020", Interval: 5 * time.Second}
}

// AddFlags registers the flags.
func (o *ReloadOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ConfigDir, "config-dir", o.ConfigDir, "The mounted config directory to watch.")
	fs.StringVar(&o.URL, "fluent-bit-url", o.URL, "Fluent Bit's HTTP server.")
	fs.DurationVar(&o.Interval, "interval", o.Interval, "How often to look at the directory.")
}

func (o *ReloadOptions) base() (string, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--fluent-bit-url %q: not an http URL", o.URL)
	}
	return u.Host, nil
}
