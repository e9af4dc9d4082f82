// Package tap serves GET pipelines/{name}/tap, Vivo's window into a pipeline: cloud-api reads the
// pipeline's Fluent Bit vivo_exporter at the endpoint the data plane reports in
// status.tapEndpoint and answers what it holds, bounded in size and time, as pods/log answers a
// container's log. The endpoint comes from a status the data plane writes, so cloud-api only
// ever asks it for /api/v1/{logs,metrics,traces}, refuses link-local addresses (cloud metadata
// services), and answers only what parses as the exporter's chunks, never a body as it came.
package tap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

// Bounds of one read.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	MaxBytes     = 4 << 20
	Timeout      = 5 * time.Second
)

// REST is pipelines/{name}/tap.
type REST struct {
	pipelines rest.Getter
	client    *http.Client
}

var (
	_ rest.GetterWithOptions = &REST{}
	_ rest.StorageMetadata   = &REST{}
)

// NewREST reads the taps of the pipelines pipelines gets.
func NewREST(pipelines rest.Getter) *REST {
	return &REST{pipelines: pipelines, client: &http.Client{
		Timeout: Timeout,
		// The exporter answers directly; a redirect would send cloud-api elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: nil, DialContext: dialer().DialContext, ResponseHeaderTimeout: Timeout},
	}}
}

// dialer refuses link-local addresses whatever a name resolves to.
func dialer() *net.Dialer {
	return &net.Dialer{Timeout: Timeout, ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip != nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified()) {
			return fmt.Errorf("refusing to read a tap at link-local address %s", host)
		}
		return nil
	}}
}

// New is what the subresource answers.
func (*REST) New() runtime.Object { return &core.PipelineTap{} }

// Destroy has nothing to release.
func (*REST) Destroy() {}

// NewGetOptions takes signal, from and limit.
func (*REST) NewGetOptions() (runtime.Object, bool, string) {
	return &core.PipelineTapOptions{}, false, ""
}

// ProducesMIMETypes is only JSON-compatible types.
func (*REST) ProducesMIMETypes(string) []string { return nil }

// ProducesObject is the answer's type, for OpenAPI.
func (*REST) ProducesObject(string) any { return &v1.PipelineTap{} }

// Get reads the pipeline's tap.
func (r *REST) Get(ctx context.Context, name string, opts runtime.Object) (runtime.Object, error) {
	o, ok := opts.(*core.PipelineTapOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unexpected options %T", opts))
	}
	signal := o.Signal
	if signal == "" {
		signal = core.TapSignalLogs
	}
	switch signal {
	case core.TapSignalLogs, core.TapSignalMetrics, core.TapSignalTraces:
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("signal %q: must be logs, metrics or traces", signal))
	}
	limit := o.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("limit %d: must be from 1 to %d", limit, MaxLimit))
	}
	if o.From != nil && *o.From < 0 {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("from %d: must not be negative", *o.From))
	}
	obj, err := r.pipelines.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	p := obj.(*core.Pipeline)
	if p.Status.TapEndpoint == "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("pipeline %s reports no tap yet: its data plane has not started it", name))
	}
	q := url.Values{"limit": {strconv.Itoa(int(limit))}}
	if o.From != nil {
		q.Set("from", strconv.FormatInt(*o.From, 10))
	}
	u := url.URL{Scheme: "http", Host: p.Status.TapEndpoint, Path: "/api/v1/" + signal, RawQuery: q.Encode()}
	tap, err := r.read(ctx, u.String(), signal, o.From)
	if err != nil {
		return nil, err
	}
	tap.Name, tap.Namespace = name, genericapirequest.NamespaceValue(ctx)
	return tap, nil
}

func (r *REST) read(ctx context.Context, u, signal string, from *int64) (*core.PipelineTap, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, unreachable(fmt.Errorf("the tap answered HTTP %d", resp.StatusCode))
	}
	tap := &core.PipelineTap{Signal: signal}
	tap.StartID = header(resp, "Vivo-Stream-Start-Id")
	tap.EndID = header(resp, "Vivo-Stream-End-Id")
	tap.NextID = header(resp, "Vivo-Stream-Next-Id")
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, unreachable(err)
	}
	if len(body) > MaxBytes {
		// Keep whole chunks only.
		body = body[:bytes.LastIndexByte(body[:MaxBytes], '\n')+1]
		tap.Truncated = true
	}
	read := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), MaxBytes)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		c, err := chunk(signal, line)
		if err != nil {
			return nil, unreachable(fmt.Errorf("the tap's answer is not vivo_exporter's: chunk %d: %w", read+1, err))
		}
		tap.Chunks = append(tap.Chunks, c)
		read++
	}
	if tap.Truncated {
		// Read on from the chunk after the last one kept.
		first := tap.StartID
		if from != nil && *from > first {
			first = *from
		}
		tap.NextID = first + int64(read)
	}
	return tap, nil
}

// chunk parses one line of the exporter's answer.
func chunk(signal string, line []byte) (core.TapChunk, error) {
	if signal != core.TapSignalLogs {
		if !json.Valid(line) || line[0] != '{' {
			return core.TapChunk{}, errors.New("not a JSON object")
		}
		return core.TapChunk{Data: &runtime.RawExtension{Raw: append([]byte(nil), line...)}}, nil
	}
	var raw struct {
		SourceType string              `json:"source_type"`
		SourceName string              `json:"source_name"`
		Tag        string              `json:"tag"`
		Records    [][]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return core.TapChunk{}, err
	}
	c := core.TapChunk{SourceType: raw.SourceType, SourceName: raw.SourceName, Tag: raw.Tag}
	for i, rec := range raw.Records {
		// [[timestamp in ns, metadata], body]
		if len(rec) != 2 {
			return c, fmt.Errorf("record %d: want [[time, metadata], record]", i)
		}
		var head []json.RawMessage
		if err := json.Unmarshal(rec[0], &head); err != nil || len(head) < 1 {
			return c, fmt.Errorf("record %d: header: %v", i, err)
		}
		var ns json.Number
		dec := json.NewDecoder(bytes.NewReader(head[0]))
		dec.UseNumber()
		if err := dec.Decode(&ns); err != nil {
			return c, fmt.Errorf("record %d: time: %w", i, err)
		}
		t, err := nanos(ns)
		if err != nil {
			return c, fmt.Errorf("record %d: time: %w", i, err)
		}
		r := core.TapRecord{Time: metav1.NewMicroTime(t), Record: runtime.RawExtension{Raw: rec[1]}}
		if len(head) > 1 && string(head[1]) != "{}" {
			r.Metadata = &runtime.RawExtension{Raw: head[1]}
		}
		c.Records = append(c.Records, r)
	}
	return c, nil
}

// nanos reads Fluent Bit's timestamp: nanoseconds, or seconds with a fraction.
func nanos(n json.Number) (time.Time, error) {
	if i, err := n.Int64(); err == nil {
		if i > 1e15 {
			return time.Unix(0, i).UTC(), nil
		}
		return time.Unix(i, 0).UTC(), nil
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, int64(f*1e9)).UTC(), nil
}

func header(resp *http.Response, k string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(resp.Header.Get(k)), 10, 64)
	return n
}

// unreachable is 502 for the caller: cloud-api could not read the tap where the data plane said.
func unreachable(err error) error {
	status := apierrors.NewInternalError(err).Status()
	status.Code = http.StatusBadGateway
	status.Reason = metav1.StatusReasonServiceUnavailable
	status.Message = "reading the pipeline's tap: " + err.Error()
	return &apierrors.StatusError{ErrStatus: status}
}
