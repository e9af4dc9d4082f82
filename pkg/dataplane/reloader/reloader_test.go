package reloader

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/calyptia/core-management-plane/internal/fluentbittest"
	"github.com/calyptia/core-management-plane/pkg/dataplane/fbapi"
)

// configMapDir lays out dir as the kubelet mounts a ConfigMap: the keys are symlinks into
// ..data, itself a symlink to a timestamped directory that each update replaces.
func configMapDir(t *testing.T, dir, version string, files map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, "..ts-"+version)
	if err := os.MkdirAll(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDigest(t *testing.T) {
	dir := t.TempDir()
	configMapDir(t, dir, "1", map[string]string{"fluent-bit.conf": "a", "parsers": "p"})
	d1, err := Digest(dir)
	if err != nil {
		t.Fatal(err)
	}
	configMapDir(t, dir, "2", map[string]string{"fluent-bit.conf": "a", "parsers": "p"})
	if d2, _ := Digest(dir); d2 != d1 {
		t.Error("the same content under a new ..data directory changed the digest")
	}
	configMapDir(t, dir, "3", map[string]string{"fluent-bit.conf": "a", "parsers": "q"})
	if d3, _ := Digest(dir); d3 == d1 {
		t.Error("a changed file did not change the digest")
	}
}

func TestReloaderReloadsFluentBit(t *testing.T) {
	binary := fluentbittest.Binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := func(tag string) string {
		return fmt.Sprintf("[SERVICE]\n    http_server on\n    http_listen 127.0.0.1\n    http_port %d\n    hot_reload on\n\n"+
			"[INPUT]\n    name dummy\n    tag %s\n\n[OUTPUT]\n    name null\n    match *\n", port, tag)
	}
	dir := t.TempDir()
	configMapDir(t, dir, "1", map[string]string{"fluent-bit.conf": config("one")})
	cmd := exec.Command(binary, "-c", filepath.Join(dir, "fluent-bit.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	client := fbapi.New(fmt.Sprintf("127.0.0.1:%d", port))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if _, err := client.ReloadCount(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("Fluent Bit's HTTP server never answered")
		case <-time.After(100 * time.Millisecond):
		}
	}
	r := &Reloader{Dir: dir, Client: client, Interval: 100 * time.Millisecond}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()

	time.Sleep(500 * time.Millisecond)
	if n, _ := client.ReloadCount(ctx); n != 0 {
		t.Errorf("reloaded %d times before any change", n)
	}
	configMapDir(t, dir, "2", map[string]string{"fluent-bit.conf": config("two")})
	for {
		n, err := client.ReloadCount(ctx)
		if err == nil && n >= 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no reload after the config changed (count %d, err %v)", n, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n, _ := client.ReloadCount(ctx); n != 1 {
		t.Errorf("%d reloads for one change", n)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if cmd.ProcessState != nil {
		t.Error("Fluent Bit exited")
	}
}
