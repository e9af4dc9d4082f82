package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is the main module, used to find the repository root.
const ModulePath = "github.com/calyptia/core-management-plane"

// RepoRoot walks up from the working directory to the main module's root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module "+ModulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", ModulePath)
		}
		dir = parent
	}
}

// BinDir is where `make tools` puts etcd, kube-apiserver and kube-controller-manager
// (E2E_BIN_DIR overrides it).
func BinDir(root string) string {
	if d := os.Getenv("E2E_BIN_DIR"); d != "" {
		return d
	}
	return filepath.Join(root, "bin")
}

// KubectlBinary picks kubectl: $KUBECTL, else the one `make tools` built into
// binDir (built only when the one on PATH is missing or too far from the
// kube-apiserver version), else the one on PATH.
func KubectlBinary(binDir string) (string, error) {
	if k := os.Getenv("KUBECTL"); k != "" {
		return k, nil
	}
	if p := filepath.Join(binDir, "kubectl"); fileExists(p) {
		return p, nil
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		return "", fmt.Errorf("no kubectl in %s or on PATH (run `make tools`): %w", binDir, err)
	}
	return p, nil
}

// BuildCloudAPI compiles cmd/cloud-api into outDir and returns the binary's path.
func BuildCloudAPI(ctx context.Context, root, outDir string) (string, error) {
	return BuildCommand(ctx, root, outDir, "cloud-api")
}

// BuildCommand compiles cmd/NAME into outDir and returns the binary's path.
func BuildCommand(ctx context.Context, root, outDir, name string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(outDir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w: %s", name, err, stderr.String())
	}
	return out, nil
}

// Kubectl runs kubectl against one kubeconfig.
type Kubectl struct {
	Binary     string
	Kubeconfig string
	// Env is added to kubectl's environment, e.g. KUBE_EDITOR for kubectl edit.
	Env []string
}

// KubectlError is a failed kubectl run, with what it printed.
type KubectlError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *KubectlError) Error() string {
	return fmt.Sprintf("kubectl %s: %v: %s", strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Stderr))
}

func (e *KubectlError) Unwrap() error { return e.Err }

// Run runs kubectl with args and returns its standard output.
func (k Kubectl) Run(ctx context.Context, args ...string) (string, error) {
	return k.RunStdin(ctx, "", args...)
}

// RunStdin is Run with stdin as kubectl's standard input.
func (k Kubectl) RunStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig=" + k.Kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, k.Binary, full...)
	cmd.Stdin = strings.NewReader(stdin)
	// kubectl must not pick up the developer's own configuration or plugins.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.Kubeconfig, "HOME="+filepath.Dir(k.Kubeconfig))
	cmd.Env = append(cmd.Env, k.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &KubectlError{Args: args, Stderr: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}

// Stderr returns what a failed kubectl run printed on standard error, or "".
func Stderr(err error) string {
	var ke *KubectlError
	if errors.As(err, &ke) {
		return ke.Stderr
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
