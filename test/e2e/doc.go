// Package e2e holds the end-to-end tests: cloud-api aggregated behind a real
// kube-apiserver (with etcd and kube-controller-manager), driven with real kubectl
// and the generated clientset. They need the binaries `make tools` builds and
// PostgreSQL, and run only with the build tag e2e: `make e2e`.
package e2e
