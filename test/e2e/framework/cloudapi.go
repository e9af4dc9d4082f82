package framework

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/calyptia/core-management-plane/internal/testpki"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

const (
	// CloudAPINamespace, CloudAPIServiceAccount, CloudAPIService and
	// CloudAPIDeployment are the names artifacts/deploy uses.
	CloudAPINamespace      = "calyptia-system"
	CloudAPIServiceAccount = "cloud-api"
	CloudAPIService        = "cloud-api"
	CloudAPIDeployment     = "cloud-api"
	// APIServiceName registers core.calyptia.com/v1.
	APIServiceName = "v1.core.calyptia.com"
	// GroupVersion is what cloud-api serves.
	GroupVersion = "core.calyptia.com/v1"
)

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// Aggregation is cloud-api's place in a cluster: the objects of artifacts/deploy,
// its ServiceAccount credentials and its serving certificate.
type Aggregation struct {
	cluster *Cluster
	dir     string
	// ServingCA signed Serving; it is the APIService's caBundle.
	ServingCA *testpki.CA
	Serving   *testpki.KeyPair
	// Kubeconfig authenticates as the cloud-api ServiceAccount, as a pod would.
	Kubeconfig string
	// EncryptionConfig encrypts pipeline secrets at rest, as a production install should.
	EncryptionConfig string
}

// InstallOptions configures InstallCloudAPI.
type InstallOptions struct {
	// DeployDir holds the manifests (artifacts/deploy).
	DeployDir string
	// EncryptionConfig is an EncryptionConfiguration to reuse, so that secrets
	// stored by an earlier run stay readable. When empty or missing, one with a
	// new key is written there (or into the cluster directory when empty).
	EncryptionConfig string
}

// InstallCloudAPI applies the manifests in opts.DeployDir with kubectl, then adapts
// the cluster to cloud-api running on this machine instead of in a pod: the
// Deployment is scaled to zero (on kwok's fake nodes its pods would be Running with
// nothing behind them), the Service becomes an ExternalName for localhost (there is
// no cluster network), and the APIService gets a real caBundle.
func (c *Cluster) InstallCloudAPI(ctx context.Context, k Kubectl, opts InstallOptions) (*Aggregation, error) {
	deployDir := opts.DeployDir
	a := &Aggregation{cluster: c, dir: filepath.Join(c.Dir, "cloud-api")}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return nil, err
	}
	if out, err := k.Run(ctx, "apply", "-f", deployDir); err != nil {
		return nil, fmt.Errorf("applying %s: %w (output: %s)", deployDir, err, out)
	}
	cs, err := c.AdminClient()
	if err != nil {
		return nil, err
	}
	scale := []byte(`{"spec":{"replicas":0}}`)
	if _, err := cs.AppsV1().Deployments(CloudAPINamespace).Patch(ctx, CloudAPIDeployment, types.MergePatchType, scale, metav1.PatchOptions{}); err != nil {
		return nil, fmt.Errorf("scaling Deployment %s to zero: %w", CloudAPIDeployment, err)
	}
	// A ClusterIP Service cannot be turned into an ExternalName one in place.
	if err := cs.CoreV1().Services(CloudAPINamespace).Delete(ctx, CloudAPIService, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("deleting Service %s: %w", CloudAPIService, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: CloudAPIService, Namespace: CloudAPINamespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}
	if _, err := cs.CoreV1().Services(CloudAPINamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating ExternalName Service: %w", err)
	}

	if a.ServingCA, err = testpki.NewCA(a.dir, "serving-ca"); err != nil {
		return nil, err
	}
	// kube-apiserver verifies the certificate for <service>.<namespace>.svc.
	if a.Serving, err = a.ServingCA.Issue(a.dir, "serving", testpki.CertRequest{
		CommonName: CloudAPIService + "." + CloudAPINamespace + ".svc",
		DNSNames:   []string{CloudAPIService + "." + CloudAPINamespace + ".svc", "localhost"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1")},
		Server:     true,
	}); err != nil {
		return nil, err
	}

	token, err := c.ServiceAccountToken(ctx, CloudAPINamespace, CloudAPIServiceAccount)
	if err != nil {
		return nil, err
	}
	a.Kubeconfig = filepath.Join(a.dir, "cloud-api.kubeconfig")
	if err := WriteKubeconfig(a.Kubeconfig, c.APIServerURL, c.ClusterCA.CertPEM(), nil, token); err != nil {
		return nil, err
	}

	a.EncryptionConfig = opts.EncryptionConfig
	if a.EncryptionConfig == "" {
		a.EncryptionConfig = filepath.Join(a.dir, "encryption.yaml")
	}
	if !fileExists(a.EncryptionConfig) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.WriteFile(a.EncryptionConfig, []byte(fmt.Sprintf(encryptionConfig, base64.StdEncoding.EncodeToString(key))), 0o600); err != nil {
			return nil, fmt.Errorf("writing encryption config: %w", err)
		}
	}
	return a, nil
}

// ServiceAccountToken returns a day-long token for a ServiceAccount from the TokenRequest API.
func (c *Cluster) ServiceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	cs, err := c.AdminClient()
	if err != nil {
		return "", err
	}
	exp := int64((24 * time.Hour).Seconds())
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// CloudAPI is one running cloud-api replica.
type CloudAPI struct {
	Name string
	Port int
	// URL is the replica's own address, bypassing kube-apiserver.
	URL     string
	process *Process
}

// Start runs one cloud-api replica on the database at dbURL.
func (a *Aggregation) Start(ctx context.Context, name, binary, dbURL string, extraArgs ...string) (*CloudAPI, error) {
	var lastErr error
	for range startTries {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &CloudAPI{Name: name, Port: port, URL: "https://127.0.0.1:" + itoa(port)}
		args := append([]string{
			"--bind-address=127.0.0.1",
			"--secure-port=" + itoa(port),
			"--tls-cert-file=" + a.Serving.CertFile,
			"--tls-private-key-file=" + a.Serving.KeyFile,
			// Delegated authentication and authorisation, as in a pod: the
			// front-proxy CA and client CA come from kube-system's
			// extension-apiserver-authentication ConfigMap.
			"--kubeconfig=" + a.Kubeconfig,
			"--authentication-kubeconfig=" + a.Kubeconfig,
			"--authorization-kubeconfig=" + a.Kubeconfig,
			"--leader-elect-resource-namespace=" + CloudAPINamespace,
			"--encryption-provider-config=" + a.EncryptionConfig,
			"--postgres-url=" + dbURL,
		}, extraArgs...)
		a.cluster.logf("starting %s on %s", name, s.URL)
		if s.process, err = StartProcess(name, filepath.Join(a.cluster.Dir, "logs", name+".log"), binary, args...); err != nil {
			return nil, err
		}
		client, err := a.DirectClient(FrontProxyIdentity{User: "kubernetes-admin", Groups: []string{"system:masters"}})
		if err != nil {
			return nil, err
		}
		lastErr = waitFor(ctx, s.process, func(ctx context.Context) error {
			if err := httpOK(ctx, client, s.URL+"/readyz"); err != nil {
				return err
			}
			// /readyz answers anonymously and may pass before the front-proxy
			// CA has been read from kube-system: wait until a forwarded request
			// is authenticated too.
			return httpOK(ctx, client, s.URL+"/apis/"+GroupVersion)
		})
		if lastErr == nil {
			return s, nil
		}
		s.process.Stop(stopGrace)
		if !portInUse(s.process.LogFile) {
			break
		}
	}
	return nil, fmt.Errorf("cloud-api %s did not become ready: %w", name, lastErr)
}

// Stop ends the replica.
func (s *CloudAPI) Stop() {
	if s != nil && s.process != nil {
		s.process.Stop(stopGrace)
	}
}

// Exited is closed when the replica's process has ended.
func (s *CloudAPI) Exited() <-chan struct{} { return s.process.Exited() }

// Pid is the replica's process id.
func (s *CloudAPI) Pid() int { return s.process.Pid() }

// LogFile is where the replica's output goes.
func (s *CloudAPI) LogFile() string { return s.process.LogFile }

// Register points the APIService at the replica s, with the serving CA as
// caBundle, and waits until kube-apiserver serves core.calyptia.com/v1 through it.
func (a *Aggregation) Register(ctx context.Context, s *CloudAPI) error {
	dyn, err := dynamic.NewForConfig(a.cluster.AdminConfig())
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{
			"caBundle": a.ServingCA.CertPEM(),
			"service":  map[string]any{"namespace": CloudAPINamespace, "name": CloudAPIService, "port": s.Port},
		},
	})
	if err != nil {
		return err
	}
	if _, err := dyn.Resource(apiServiceGVR).Patch(ctx, APIServiceName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("pointing APIService %s at %s: %w", APIServiceName, s.URL, err)
	}
	cs, err := a.cluster.AdminClient()
	if err != nil {
		return err
	}
	return waitFor(ctx, s.process, func(ctx context.Context) error {
		obj, err := dyn.Resource(apiServiceGVR).Get(ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var status struct {
			Conditions []metav1.Condition `json:"conditions"`
		}
		raw, _ := json.Marshal(obj.Object["status"])
		if err := json.Unmarshal(raw, &status); err != nil {
			return err
		}
		available := false
		for _, c := range status.Conditions {
			if c.Type == "Available" && c.Status == metav1.ConditionTrue {
				available = true
			}
		}
		if !available {
			return fmt.Errorf("APIService %s not available: %+v", APIServiceName, status.Conditions)
		}
		_, err = cs.Discovery().ServerResourcesForGroupVersion(GroupVersion)
		return err
	})
}

// FrontProxyIdentity is the user a DirectClient claims to forward for.
type FrontProxyIdentity struct {
	User   string
	Groups []string
}

// DirectClient returns an HTTP client that calls cloud-api directly the way
// kube-apiserver does: over the front-proxy client certificate, naming the user
// in X-Remote-* headers. Tests use it to reach one replica in particular.
func (a *Aggregation) DirectClient(id FrontProxyIdentity) (*http.Client, error) {
	cert, err := tls.X509KeyPair(a.cluster.FrontProxyClient.CertPEM, a.cluster.FrontProxyClient.KeyPEM)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:      a.ServingRoots(),
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}}
	return &http.Client{Transport: remoteUser{id: id, next: tr}, Timeout: time.Minute}, nil
}

// DirectConfig is DirectClient as a client-go config, for typed clients on one replica.
func (a *Aggregation) DirectConfig(s *CloudAPI, id FrontProxyIdentity) *rest.Config {
	return &rest.Config{
		Host: s.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   a.ServingCA.CertPEM(),
			CertData: a.cluster.FrontProxyClient.CertPEM,
			KeyData:  a.cluster.FrontProxyClient.KeyPEM,
		},
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper { return remoteUser{id: id, next: rt} },
	}
}

// ServingRoots is a pool holding only the serving CA.
func (a *Aggregation) ServingRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.ServingCA.Cert)
	return pool
}

type remoteUser struct {
	id   FrontProxyIdentity
	next http.RoundTripper
}

func (r remoteUser) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Remote-User", r.id.User)
	req.Header.Del("X-Remote-Group")
	for _, g := range r.id.Groups {
		req.Header.Add("X-Remote-Group", g)
	}
	return r.next.RoundTrip(req)
}

const encryptionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: ["pipelinesecrets.core.calyptia.com"]
  providers:
  - secretbox:
      keys:
      - name: e2e
        secret: %s
  - identity: {}
`
