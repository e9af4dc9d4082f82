package ociimage

import (
	"archive/tar"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildStatic compiles a tiny program with CGO_ENABLED=0, as `make images` builds the real ones.
func buildStatic(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":  "module hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from the image\") }\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(src, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// testCA writes a PEM bundle with one self-signed certificate: the test does not depend on
// the machine's CA bundle.
func testCA(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestBuildReadBack(t *testing.T) {
	dir := t.TempDir()
	bin := buildStatic(t, dir)
	caPath, caPEM := testCA(t, dir)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	img, err := Build(Spec{Name: "hello", Binary: bin, CACertificates: caPath, Created: created,
		Labels: map[string]string{"org.opencontainers.image.version": "v1.2.3"}})
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "hello.tar")
	const ref = "ghcr.io/calyptia/hello:v1.2.3"
	if err := WriteTarball(img, ref, tarPath); err != nil {
		t.Fatal(err)
	}

	c, err := Read(tarPath, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	cfg := c.Config
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != "/usr/local/bin/hello" {
		t.Errorf("entrypoint %q", got)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q", cfg.Config.User)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if !cfg.Created.Time.Equal(created) {
		t.Errorf("created %v, want %v", cfg.Created.Time, created)
	}
	if cfg.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" {
		t.Errorf("labels %v", cfg.Config.Labels)
	}
	if !strings.Contains(strings.Join(cfg.Config.Env, "\n"), "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
		t.Errorf("env %v", cfg.Config.Env)
	}

	// The files: the binary byte for byte, the CA bundle, the user, /tmp.
	want, _ := os.ReadFile(bin)
	e, ok := c.Files["usr/local/bin/hello"]
	if !ok || string(e.Data) != string(want) {
		t.Fatal("the binary in the image is not the one built")
	}
	if e.Header.Mode&0o777 != 0o755 || e.Header.Uid != 0 {
		t.Errorf("binary mode %o uid %d, want 755 owned by root (the user cannot replace it)", e.Header.Mode, e.Header.Uid)
	}
	if got := string(c.Files["etc/ssl/certs/ca-certificates.crt"].Data); got != string(caPEM) {
		t.Error("CA bundle in the image is not the given one")
	}
	if !strings.Contains(string(c.Files["etc/passwd"].Data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd:\n%s", c.Files["etc/passwd"].Data)
	}
	if tmp := c.Files["tmp"]; tmp.Header == nil || tmp.Header.Typeflag != tar.TypeDir || tmp.Header.Mode&0o1777 != 0o1777 {
		t.Error("no sticky world-writable /tmp")
	}
	if home := c.Files["home/nonroot"]; home.Header == nil || home.Header.Uid != UID {
		t.Error("the user's home is not the user's")
	}
	for name, f := range c.Files {
		if !f.Header.ModTime.Equal(created) {
			t.Errorf("%s has mtime %v: images would not be reproducible", name, f.Header.ModTime)
		}
	}

	// The entrypoint really runs once taken out of the image (it needs nothing from the host).
	extracted := filepath.Join(dir, "extracted")
	if err := os.WriteFile(extracted, e.Data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(extracted).Output()
	if err != nil || strings.TrimSpace(string(out)) != "hello from the image" {
		t.Errorf("running the extracted entrypoint: %v: %q", err, out)
	}

	// Same inputs, same image.
	again, err := Build(Spec{Name: "hello", Binary: bin, CACertificates: caPath, Created: created,
		Labels: map[string]string{"org.opencontainers.image.version": "v1.2.3"}})
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 || d1 != c.Digest {
		t.Errorf("digests %s, %s and read back %s differ", d1, d2, c.Digest)
	}
}

func TestBuildRefuses(t *testing.T) {
	dir := t.TempDir()
	caPath, _ := testCA(t, dir)
	// A dynamically linked binary could not start in an image without libc.
	if sh, err := exec.LookPath("sh"); err == nil {
		if err := CheckStatic(mustRead(t, sh)); err == nil {
			t.Logf("%s is static here; skipping the dynamic case", sh)
		} else if _, err := Build(Spec{Name: "sh", Binary: sh, CACertificates: caPath}); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Errorf("building from dynamic %s: %v", sh, err)
		}
	}
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Spec{Name: "script", Binary: script, CACertificates: caPath}); err == nil {
		t.Error("a shell script was accepted as a static binary")
	}
	bin := buildStatic(t, dir)
	empty := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Spec{Name: "hello", Binary: bin, CACertificates: empty}); err == nil {
		t.Error("an image without CA certificates was built")
	}
	if _, err := Build(Spec{Name: "../hello", Binary: bin, CACertificates: caPath}); err == nil {
		t.Error("a name with a path was accepted")
	}
}

// Check catches images that break the rules, not only ones Build makes.
func TestCheckFindsProblems(t *testing.T) {
	dir := t.TempDir()
	bin := buildStatic(t, dir)
	caPath, _ := testCA(t, dir)
	img, err := Build(Spec{Name: "hello", Binary: bin, CACertificates: caPath})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "hello.tar")
	if err := WriteTarball(img, "example.com/hello:1", p); err != nil {
		t.Fatal(err)
	}
	for name, breakIt := range map[string]func(c *Contents){
		"root user":          func(c *Contents) { c.Config.Config.User = "0:0" },
		"named user":         func(c *Contents) { c.Config.Config.User = "nonroot" },
		"unknown uid":        func(c *Contents) { c.Config.Config.User = "1234:1234" },
		"missing entrypoint": func(c *Contents) { c.Config.Config.Entrypoint = []string{"/bin/missing"} },
		"no CA":              func(c *Contents) { delete(c.Files, "etc/ssl/certs/ca-certificates.crt") },
	} {
		c, err := Read(p, "example.com/hello:1")
		if err != nil {
			t.Fatal(err)
		}
		breakIt(c)
		if err := c.Check(); err == nil {
			t.Errorf("%s: Check passed", name)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
