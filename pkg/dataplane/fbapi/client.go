// Package fbapi talks to a running Fluent Bit through its HTTP server (the service section's
// http_server): health, hot reload and build information.
package fbapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls one Fluent Bit.
type Client struct {
	// Base is the HTTP server's address, e.g. "http://127.0.0.1:2020".
	Base string
	HTTP *http.Client
}

// New returns a client for the Fluent Bit whose HTTP server listens on hostPort.
func New(hostPort string) *Client {
	return &Client{Base: "http://" + hostPort, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

// Health is the answer of GET /api/v2/health.
type Health struct {
	Status string `json:"status"`
	Errors int    `json:"errors"`
}

// Healthy asks /api/v2/health; it is healthy when it answers 200 with status "ok".
func (c *Client) Healthy(ctx context.Context) (bool, error) {
	var h Health
	code, err := c.do(ctx, http.MethodGet, "/api/v2/health", nil, &h)
	if err != nil {
		return false, err
	}
	return code == http.StatusOK && h.Status == "ok", nil
}

// ReloadCount returns how many hot reloads the process has done.
func (c *Client) ReloadCount(ctx context.Context) (int, error) {
	var r struct {
		Count *int `json:"hot_reload_count"`
	}
	code, err := c.do(ctx, http.MethodGet, "/api/v2/reload", nil, &r)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK || r.Count == nil {
		return 0, fmt.Errorf("GET /api/v2/reload: HTTP %d without a reload count", code)
	}
	return *r.Count, nil
}

// Reload asks Fluent Bit to re-read its config (it needs hot_reload on) and waits until the
// reload count has gone past what it was before, or ctx ends.
func (c *Client) Reload(ctx context.Context) (count int, err error) {
	before, err := c.ReloadCount(ctx)
	if err != nil {
		return 0, err
	}
	var r struct {
		Reload string `json:"reload"`
		Status int    `json:"status"`
	}
	// An empty POST gets no answer: the body must be JSON, even if empty.
	code, err := c.do(ctx, http.MethodPost, "/api/v2/reload", []byte("{}"), &r)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK || r.Status != 0 {
		return 0, fmt.Errorf("POST /api/v2/reload: HTTP %d, reload %q, status %d", code, r.Reload, r.Status)
	}
	// The reload runs after the answer, and the HTTP server restarts with it.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if n, err := c.ReloadCount(ctx); err == nil && n > before {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for the reload to finish: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Version returns the version GET / reports.
func (c *Client) Version(ctx context.Context) (string, error) {
	var info struct {
		FluentBit struct {
			Version string `json:"version"`
		} `json:"fluent-bit"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/", nil, &info); err != nil {
		return "", err
	}
	return info.FluentBit.Version, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding %q: %w", method, path, truncate(b, 200), err)
		}
	}
	return resp.StatusCode, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
