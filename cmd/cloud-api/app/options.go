// Package app holds the flags of cloud-api and wires them into the server
// of pkg/apiserver, the PostgreSQL backend and the controllers.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"k8s.io/apiserver/pkg/storage/value"
	cliflag "k8s.io/component-base/cli/flag"
	componentbaseconfig "k8s.io/component-base/config"
	componentbaseoptions "k8s.io/component-base/config/options"
	netutils "k8s.io/utils/net"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/apiserver"
	generatedopenapi "github.com/calyptia/core-management-plane/pkg/generated/openapi"
)

// Options are every flag of cloud-api.
type Options struct {
	ServerRun   *genericoptions.ServerRunOptions
	Recommended *genericoptions.RecommendedOptions
	Postgres    *PostgresOptions
	Metrics     *MetricsOptions
	// EncryptionProviderConfig is the path of an EncryptionConfiguration
	// (apiserver.config.k8s.io/v1) for values at rest, as kube-apiserver takes it.
	EncryptionProviderConfig string
	LeaderElection           componentbaseconfig.LeaderElectionConfiguration
	// Standalone runs without any kube-apiserver: see the flag's help.
	Standalone bool
	// AlternateDNS are extra names for the self-signed serving certificate.
	AlternateDNS []string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	o := &Options{
		ServerRun: genericoptions.NewServerRunOptions(),
		Recommended: genericoptions.NewRecommendedOptions(
			apiserver.StoragePrefix,
			apiserver.Codecs.LegacyCodec(corev1.SchemeGroupVersion),
		),
		Postgres: NewPostgresOptions(),
		Metrics:  NewMetricsOptions(),
		LeaderElection: componentbaseconfig.LeaderElectionConfiguration{
			LeaderElect:   true,
			LeaseDuration: metav1.Duration{Duration: 15 * time.Second},
			RenewDeadline: metav1.Duration{Duration: 10 * time.Second},
			RetryPeriod:   metav1.Duration{Duration: 2 * time.Second},
			ResourceLock:  "leases",
			ResourceName:  "cloud-api",
			// Empty: the namespace cloud-api runs in (see Complete).
			ResourceNamespace: "",
		},
	}
	// Objects live in PostgreSQL; no etcd flags, no etcd health checks.
	o.Recommended.Etcd = nil
	// Like kube-controller-manager: without a kubeconfig and outside a
	// cluster, run without TokenReview/SubjectAccessReview instead of failing.
	// That only removes ways in: tokens are then refused and only the
	// always-allowed groups (system:masters) are authorised.
	o.Recommended.Authentication.RemoteKubeConfigFileOptional = true
	o.Recommended.Authorization.RemoteKubeConfigFileOptional = true
	return o
}

// Flags returns the flags in named sections, for help output.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("cloud-api")
	fs.StringVar(&o.EncryptionProviderConfig, "encryption-provider-config", o.EncryptionProviderConfig,
		"The file containing an EncryptionConfiguration (apiserver.config.k8s.io/v1) for values stored in "+
			"PostgreSQL, e.g. with pipelinesecrets.core.calyptia.com under resources. Without it, values are stored unencrypted.")
	fs.BoolVar(&o.Standalone, "standalone", o.Standalone,
		"Run without a kube-apiserver (local development): no delegated authentication or authorisation "+
			"(use --client-ca-file and --authentication-skip-lookup; only the groups of "+
			"--authorization-always-allow-groups are authorised), no webhook admission, no priority and fairness, "+
			"and the controllers run without leader election, so run a single replica.")
	fs.StringSliceVar(&o.AlternateDNS, "alternate-dns", o.AlternateDNS,
		"Extra DNS names for the self-signed serving certificate made when no --tls-cert-file is given.")
	o.Postgres.AddFlags(fss.FlagSet("postgres"))
	o.Metrics.AddFlags(fss.FlagSet("metrics"))
	componentbaseoptions.BindLeaderElectionFlags(&o.LeaderElection, fss.FlagSet("leader election"))

	o.ServerRun.AddUniversalFlags(fss.FlagSet("generic"))
	o.Recommended.SecureServing.AddFlags(fss.FlagSet("secure serving"))
	o.Recommended.Authentication.AddFlags(fss.FlagSet("authentication"))
	o.Recommended.Authorization.AddFlags(fss.FlagSet("authorization"))
	o.Recommended.Audit.AddFlags(fss.FlagSet("audit"))
	o.Recommended.Features.AddFlags(fss.FlagSet("features"))
	o.Recommended.CoreAPI.AddFlags(fss.FlagSet("core api"))
	o.Recommended.Admission.AddFlags(fss.FlagSet("admission"))
	o.Recommended.EgressSelector.AddFlags(fss.FlagSet("egress selector"))
	o.Recommended.Traces.AddFlags(fss.FlagSet("traces"))
	return fss
}

// Complete derives the options that depend on others. Call it after
// parsing flags and before Validate.
func (o *Options) Complete() error {
	if o.LeaderElection.ResourceNamespace == "" {
		o.LeaderElection.ResourceNamespace = ownNamespace()
	}
	if o.Standalone {
		// Each of these needs a kube-apiserver to talk to.
		o.Recommended.CoreAPI = nil
		o.Recommended.Admission = nil
		o.Recommended.Features.EnablePriorityAndFairness = false
		o.LeaderElection.LeaderElect = false
	}
	// Fix feature gates and emulation version now that flags are parsed,
	// before anything reads them.
	return o.ServerRun.ComponentGlobalsRegistry.Set()
}

// serviceAccountNamespaceFile holds the pod's namespace in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ownNamespace is the namespace this pod runs in, where its RBAC lets it
// hold the leader election Lease; kube-system outside a cluster.
func ownNamespace() string {
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "kube-system"
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() []error {
	errs := o.ServerRun.Validate()
	errs = append(errs, o.Recommended.Validate()...)
	errs = append(errs, o.Postgres.Validate()...)
	errs = append(errs, o.Metrics.Validate()...)
	if o.EncryptionProviderConfig != "" {
		if _, err := os.Stat(o.EncryptionProviderConfig); err != nil {
			errs = append(errs, fmt.Errorf("--encryption-provider-config: %w", err))
		}
	}
	if o.Standalone {
		a := o.Recommended.Authentication
		if a.ClientCert.ClientCA == "" && a.RequestHeader.ClientCAFile == "" {
			errs = append(errs, errors.New("--standalone needs --client-ca-file or --requestheader-client-ca-file: there is no kube-apiserver to authenticate users"))
		}
		if !a.SkipInClusterLookup {
			errs = append(errs, errors.New("--standalone needs --authentication-skip-lookup: there is no cluster to look authentication configuration up in"))
		}
	}
	if o.LeaderElection.LeaderElect && o.LeaderElection.ResourceLock != "leases" {
		errs = append(errs, fmt.Errorf("--leader-elect-resource-lock: only %q is supported", "leases"))
	}
	return errs
}

// Config builds the server configuration on the given storage. ctx bounds
// the encryption providers (KMS plugins) and should live as long as the server.
func (o *Options) Config(ctx context.Context, storage apiserver.StorageBackend) (*apiserver.Config, error) {
	if err := o.Recommended.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", o.AlternateDNS,
		[]net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("creating self-signed certificates: %w", err)
	}

	serverConfig := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	namer := openapinamer.NewDefinitionNamer(apiserver.Scheme)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	serverConfig.OpenAPIConfig.Info.Title = "Calyptia Core"
	serverConfig.OpenAPIConfig.Info.Version = corev1.SchemeGroupVersion.Version
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	serverConfig.OpenAPIV3Config.Info.Title = "Calyptia Core"
	serverConfig.OpenAPIV3Config.Info.Version = corev1.SchemeGroupVersion.Version

	if err := o.ServerRun.ApplyTo(&serverConfig.Config); err != nil {
		return nil, fmt.Errorf("applying generic server options: %w", err)
	}
	if err := o.Recommended.ApplyTo(serverConfig); err != nil {
		return nil, fmt.Errorf("applying recommended options: %w", err)
	}
	if o.EncryptionProviderConfig != "" {
		enc, err := encryptionconfig.LoadEncryptionConfig(ctx, o.EncryptionProviderConfig, false, serverConfig.APIServerID)
		if err != nil {
			return nil, fmt.Errorf("loading --encryption-provider-config: %w", err)
		}
		if err := checkEncryptedResources(enc.Transformers); err != nil {
			return nil, err
		}
		serverConfig.ResourceTransformers = encryptionconfig.StaticTransformers(enc.Transformers)
		// Like kube-apiserver: a failing KMS plugin makes the server unready, not dead.
		serverConfig.HealthzChecks = append(serverConfig.HealthzChecks, enc.HealthChecks...)
		serverConfig.ReadyzChecks = append(serverConfig.ReadyzChecks, enc.HealthChecks...)
	}

	return &apiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: apiserver.ExtraConfig{
			Storage:                 storage,
			DeleteCollectionWorkers: 1,
			// The cluster's garbage collector only sees this group when it
			// is aggregated; standalone, owner references are inert anyway.
			EnableGarbageCollection: !o.Standalone,
		},
	}, nil
}

// encryptableResources are the resources of core.calyptia.com an
// EncryptionConfiguration may name.
var encryptableResources = map[string]bool{
	"coreinstances":    true,
	"pipelines":        true,
	"pipelinesecrets":  true,
	"resourceprofiles": true,
}

// checkEncryptedResources refuses an encryption configuration that names a
// resource of this group that does not exist: a typo there would silently
// leave pipeline secrets in plaintext.
func checkEncryptedResources(transformers map[schema.GroupResource]value.Transformer) error {
	for gr := range transformers {
		if gr.Group == core.GroupName && gr.Resource != "*" && !encryptableResources[gr.Resource] {
			return fmt.Errorf("--encryption-provider-config names %s, which this server does not serve", gr)
		}
	}
	return nil
}
