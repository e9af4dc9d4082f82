package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/calyptia/core-management-plane/pkg/console"
	"github.com/calyptia/core-management-plane/web"
)

// Run serves the UI until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	kube, err := loadConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	cfg := console.Config{Kube: kube, Assets: web.Assets(), SecureCookie: o.SecureCookie}
	if cfg.Assets == nil {
		logger.Info("This binary has no UI assets (run make ui before building); serving a page saying so")
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.AuthProxyClientCAFile != "" {
		pem, err := os.ReadFile(o.AuthProxyClientCAFile)
		if err != nil {
			return fmt.Errorf("--auth-proxy-client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--auth-proxy-client-ca-file %s: no PEM certificate", o.AuthProxyClientCAFile)
		}
		cfg.AuthProxy = &console.AuthProxy{
			ClientCA: pool, AllowedNames: nonEmpty(o.AuthProxyAllowedNames),
			UsernameHeaders: nonEmpty(o.AuthProxyUsernameHeaders), GroupHeaders: nonEmpty(o.AuthProxyGroupHeaders),
			ExtraHeaderPrefixes: nonEmpty(o.AuthProxyExtraHeaderPrefix),
		}
		// Asked for, verified by the auth proxy authenticator; browsers without one still connect.
		tlsConfig.ClientAuth = tls.RequestClientCert
	}
	srv, err := console.New(cfg)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr: o.Listen, Handler: srv, TLSConfig: tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: watches stream for as long as the page is open.
		IdleTimeout: 2 * time.Minute,
	}
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	scheme := "http"
	if o.TLSCertFile != "" {
		scheme = "https"
	}
	logger.Info("Serving the UI", "address", l.Addr().String(), "scheme", scheme, "kubeAPIServer", kube.Host, "authProxy", cfg.AuthProxy != nil)
	errc := make(chan error, 1)
	go func() {
		if o.TLSCertFile != "" {
			errc <- hs.ServeTLS(l, o.TLSCertFile, o.TLSKeyFile)
		} else {
			errc <- hs.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Watches never end by themselves: cut what is left after the grace period.
		_ = hs.Close()
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return nil
}

func loadConfig(path string) (*rest.Config, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
