package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

func TestSelectors(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	type seed struct {
		name, team, core string
		phase            calyptiav1.PipelinePhase
	}
	for _, s := range []seed{
		{"a1", "a", "edge", calyptiav1.PipelinePhaseStarted},
		{"a2", "a", "prod", calyptiav1.PipelinePhaseFailed},
		{"b1", "b", "prod", calyptiav1.PipelinePhaseStarted},
		{"n1", "", "edge", ""},
	} {
		p := newPipeline(ns, s.name, s.core)
		if s.team != "" {
			p.Labels = map[string]string{"team": s.team}
		}
		createPipeline(t, p)
		if s.phase != "" {
			setPhase(t, ns, s.name, s.phase)
		}
	}

	tests := []struct {
		name          string
		label, fields string
		want          []string
	}{
		{name: "label equals", label: "team=a", want: []string{"a1", "a2"}},
		{name: "label not equals includes unlabelled", label: "team!=a", want: []string{"b1", "n1"}},
		{name: "label set", label: "team in (a,b)", want: []string{"a1", "a2", "b1"}},
		{name: "label exists", label: "!team", want: []string{"n1"}},
		{name: "core instance", fields: "spec.coreInstance=edge", want: []string{"a1", "n1"}},
		{name: "core instance not", fields: "spec.coreInstance!=edge", want: []string{"a2", "b1"}},
		{name: "phase", fields: "status.phase=Started", want: []string{"a1", "b1"}},
		{name: "name", fields: "metadata.name=b1", want: []string{"b1"}},
		{name: "label and field", label: "team=a", fields: "spec.coreInstance=prod", want: []string{"a2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := env.client.CoreV1().Pipelines(ns).List(ctx, metav1.ListOptions{LabelSelector: tt.label, FieldSelector: tt.fields})
			got, err := names(l, err)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("list = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("unknown field is refused", func(t *testing.T) {
		_, err := env.client.CoreV1().Pipelines(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.image=x"})
		if !apierrors.IsBadRequest(err) {
			t.Errorf("got %v, want 400 BadRequest", err)
		}
	})
}

func TestPaginationWithContinue(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("page-%d", i)
		createPipeline(t, newPipeline(ns, name, "ci"))
		want = append(want, name)
	}

	var got []string
	var sizes []int
	opts := metav1.ListOptions{Limit: 3}
	for {
		l, err := env.client.CoreV1().Pipelines(ns).List(ctx, opts)
		if err != nil {
			t.Fatalf("list page %d: %v", len(sizes), err)
		}
		sizes = append(sizes, len(l.Items))
		for _, p := range l.Items {
			got = append(got, p.Name)
		}
		if l.Continue == "" {
			break
		}
		if len(sizes) > 5 {
			t.Fatalf("more pages than expected: %v", sizes)
		}
		opts.Continue = l.Continue
		if len(sizes) == 1 {
			// Writes between pages do not show in later pages: they come from one snapshot.
			createPipeline(t, newPipeline(ns, "page-9-late", "ci"))
		}
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Errorf("page sizes = %v, want [3 3 1]", sizes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged names = %v, want %v", got, want)
	}

	out, err := kubectl(t, "get", "pipelines", "-n", ns, "--chunk-size=2", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "pipeline.core.calyptia.com/"); n != 8 {
		t.Errorf("kubectl --chunk-size=2 listed %d pipelines, want 8:\n%s", n, out)
	}
}

func TestValidationErrors(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	tests := []struct {
		name   string
		mutate func(p *calyptiav1.Pipeline)
		// wantField is a field path the 422's causes must name.
		wantField string
		// wantMessage is a substring of that cause.
		wantMessage string
	}{
		{
			name: "unknown output plugin",
			mutate: func(p *calyptiav1.Pipeline) {
				p.Spec.Config = "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name s4\n    match *\n"
			},
			wantField:   "spec.config",
			wantMessage: `line 5: output "s4": unknown plugin`,
		},
		{
			name: "unknown property",
			mutate: func(p *calyptiav1.Pipeline) {
				p.Spec.Config = "[INPUT]\n    name dummy\n    bogus_property 1\n\n[OUTPUT]\n    name stdout\n"
			},
			wantField:   "spec.config",
			wantMessage: `line 3: input "dummy": property "bogus_property"`,
		},
		{
			name: "bad yaml",
			mutate: func(p *calyptiav1.Pipeline) {
				p.Spec.ConfigFormat = calyptiav1.ConfigFormatYAML
				p.Spec.Config = "pipeline:\n  inputs: [\n"
			},
			wantField:   "spec.config",
			wantMessage: "",
		},
		{
			name:      "negative replicas",
			mutate:    func(p *calyptiav1.Pipeline) { r := int32(-1); p.Spec.Replicas = &r },
			wantField: "spec.replicas",
		},
		{
			name:      "replicas on a daemonset",
			mutate:    func(p *calyptiav1.Pipeline) { p.Spec.Kind = calyptiav1.PipelineKindDaemonSet },
			wantField: "spec.replicas",
		},
		{
			name:      "unknown kind",
			mutate:    func(p *calyptiav1.Pipeline) { p.Spec.Kind = "CronJob" },
			wantField: "spec.kind",
		},
		{
			name:      "missing core instance",
			mutate:    func(p *calyptiav1.Pipeline) { p.Spec.CoreInstance = "" },
			wantField: "spec.coreInstance",
		},
		{
			name:      "bad name",
			mutate:    func(p *calyptiav1.Pipeline) { p.Name = "Not_A_DNS_Name" },
			wantField: "metadata.name",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(ns, fmt.Sprintf("invalid-%d", i), "ci")
			tt.mutate(p)
			_, err := env.client.CoreV1().Pipelines(ns).Create(ctx, p, metav1.CreateOptions{})
			requireInvalid(t, err, tt.wantField, tt.wantMessage)
		})
	}

	t.Run("kind is immutable", func(t *testing.T) {
		createPipeline(t, newPipeline(ns, "immutable-kind", "ci"))
		p := waitSettled(t, ns, "immutable-kind")
		p.Spec.Kind = calyptiav1.PipelineKindStatefulSet
		_, err := env.client.CoreV1().Pipelines(ns).Update(ctx, p, metav1.UpdateOptions{})
		requireInvalid(t, err, "spec.kind", "")
	})
}

// requireInvalid fails unless err is a 422 whose causes name field (and,
// when given, contain message).
func requireInvalid(t *testing.T, err error, field, message string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want 422 Invalid", err)
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		t.Fatalf("422 without details: %v", err)
	}
	for _, c := range status.Status().Details.Causes {
		if strings.HasPrefix(c.Field, field) && strings.Contains(c.Message, message) {
			return
		}
	}
	t.Errorf("422 causes %+v do not name %s with %q", status.Status().Details.Causes, field, message)
}

func TestObjectSizeLimit(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	c := env.client.CoreV1()
	tests := []struct {
		name string
		// create makes an object that passes validation.
		create   func() error
		tooLarge bool
	}{
		{
			// The largest pipeline validation allows still fits in storage.
			name: "pipeline at the validation limits",
			create: func() error {
				p := newPipeline(ns, "largest", "ci")
				p.Spec.Config = validConfig + "#" + strings.Repeat("x", 500<<10) + "\n"
				p.Spec.Files = []calyptiav1.PipelineFile{{Name: "big", Content: strings.Repeat("y", 500<<10)}}
				_, err := c.Pipelines(ns).Create(ctx, p, metav1.CreateOptions{})
				return err
			},
		},
		{
			// 1 MiB of secret data is stored base64-encoded (1.33 MiB); with
			// 200 KiB of annotations the object is over the 1.5 MiB storage limit.
			name: "secret over the storage limit",
			create: func() error {
				s := pipelineSecret("huge", "blob", strings.Repeat("z", 1<<20))
				s.Annotations = map[string]string{"example.com/note": strings.Repeat("n", 200<<10)}
				_, err := c.PipelineSecrets(ns).Create(ctx, s, metav1.CreateOptions{})
				return err
			},
			tooLarge: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.create()
			switch {
			case !tt.tooLarge && err != nil:
				t.Fatalf("create: %v", err)
			case tt.tooLarge && !apierrors.IsRequestEntityTooLargeError(err):
				t.Fatalf("create: got %v, want 413 Request Entity Too Large", err)
			}
		})
	}
	if _, err := c.PipelineSecrets(ns).Get(ctx, "huge", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after refused create: got %v, want NotFound", err)
	}
}
