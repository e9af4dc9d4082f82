package inuse

import (
	"context"
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

const classicConfig = `[INPUT]
    name dummy

[OUTPUT]
    name        http
    match       *
    http_user   {{ secrets.user }}
    http_passwd {{ secrets.password }}
    header      X-Ca {{ files.ca }}
`

const yamlConfig = `pipeline:
  inputs:
    - name: dummy
  outputs:
    - name: http
      match: "*"
      http_passwd: "{{ secrets.password }}"
`

func TestReadsSecret(t *testing.T) {
	secret := &core.PipelineSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "es", Namespace: "team-a"},
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}
	tests := []struct {
		name    string
		secrets []string
		format  core.ConfigFormat
		config  string
		data    map[string][]byte // replaces the secret's data when set
		want    bool
	}{
		{name: "listed and a key read", secrets: []string{"other", "es"}, format: core.ConfigFormatClassic, config: classicConfig, want: true},
		{name: "yaml config", secrets: []string{"es"}, format: core.ConfigFormatYAML, config: yamlConfig, want: true},
		{name: "format inferred as classic", secrets: []string{"es"}, config: classicConfig, want: true},
		{name: "format inferred as yaml", secrets: []string{"es"}, config: yamlConfig, want: true},
		{name: "not listed", secrets: []string{"other"}, format: core.ConfigFormatClassic, config: classicConfig, want: false},
		{name: "listed but no key of it read", secrets: []string{"es"}, format: core.ConfigFormatClassic, config: classicConfig,
			data: map[string][]byte{"token": nil}, want: false},
		{name: "a file of the key's name is not a secret reference", secrets: []string{"es"}, format: core.ConfigFormatClassic, config: classicConfig,
			data: map[string][]byte{"ca": nil}, want: false},
		{name: "no keys", secrets: []string{"es"}, format: core.ConfigFormatClassic, config: classicConfig, data: map[string][]byte{}, want: false},
		{name: "config that no longer parses counts as reading it", secrets: []string{"es"}, format: core.ConfigFormatClassic, config: "[INPUT\n", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := secret.DeepCopy()
			if tt.data != nil {
				s.Data = tt.data
			}
			p := &core.Pipeline{Spec: core.PipelineSpec{Secrets: tt.secrets, ConfigFormat: tt.format, Config: tt.config}}
			if got := readsSecret(p, s); got != tt.want {
				t.Errorf("readsSecret() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInUseError(t *testing.T) {
	many := make([]string, 12)
	for i := range many {
		many[i] = fmt.Sprintf("p%02d", 11-i)
	}
	tests := []struct {
		name      string
		pipelines []string
		want      string
	}{
		{name: "one", pipelines: []string{"logs"}, want: `pipelinesecrets "es" cannot be deleted: referenced by pipeline logs`},
		{name: "sorted", pipelines: []string{"other", "forward-to-elasticsearch"},
			want: `pipelinesecrets "es" cannot be deleted: referenced by pipelines forward-to-elasticsearch, other`},
		{name: "at most ten named", pipelines: many,
			want: `pipelinesecrets "es" cannot be deleted: referenced by pipelines p00, p01, p02, p03, p04, p05, p06, p07, p08, p09 and 2 more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := inUseError(core.Resource("pipelinesecrets"), "es", tt.pipelines)
			if !apierrors.IsConflict(err) {
				t.Errorf("err = %v, want 409 Conflict", err)
			}
			if d := err.ErrStatus.Details; d == nil || d.Group != core.GroupName || d.Kind != "pipelinesecrets" || d.Name != "es" {
				t.Errorf("details = %+v, want the secret", d)
			}
			if err.Error() != tt.want {
				t.Errorf("message = %q\nwant      %q", err.Error(), tt.want)
			}
		})
	}
}

// fakePipelines lists its pipelines of the context's namespace.
type fakePipelines struct {
	items []core.Pipeline
	err   error
}

func (f fakePipelines) List(ctx context.Context, _ *metainternalversion.ListOptions) (runtime.Object, error) {
	if f.err != nil {
		return nil, f.err
	}
	ns, ok := genericapirequest.NamespaceFrom(ctx)
	if !ok {
		return nil, errors.New("no namespace in the context")
	}
	list := &core.PipelineList{}
	for _, p := range f.items {
		if p.Namespace == ns {
			list.Items = append(list.Items, p)
		}
	}
	return list, nil
}

func TestGuard(t *testing.T) {
	pipeline := func(ns, name, profile string, terminating bool) core.Pipeline {
		p := core.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: core.PipelineSpec{ResourceProfile: profile}}
		if terminating {
			p.DeletionTimestamp = &metav1.Time{}
			p.Finalizers = []string{"example.com/keep"}
		}
		return p
	}
	profile := &core.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "custom"}}
	admissionErr := apierrors.NewForbidden(core.Resource("resourceprofiles"), "custom", errors.New("admission says no"))
	tests := []struct {
		name      string
		pipelines fakePipelines
		validate  func(context.Context, runtime.Object) error
		check     func(error) bool
		want      string
	}{
		{name: "unused", pipelines: fakePipelines{items: []core.Pipeline{pipeline("team-a", "a", "other", false)}}, check: isNil},
		{name: "used", check: apierrors.IsConflict, want: `resourceprofiles "custom" cannot be deleted: referenced by pipelines a, b`,
			pipelines: fakePipelines{items: []core.Pipeline{pipeline("team-a", "b", "custom", false), pipeline("team-a", "a", "custom", false)}}},
		{name: "used by a terminating pipeline only", check: isNil,
			pipelines: fakePipelines{items: []core.Pipeline{pipeline("team-a", "a", "custom", true)}}},
		{name: "terminating pipelines are not named", check: apierrors.IsConflict, want: `resourceprofiles "custom" cannot be deleted: referenced by pipeline b`,
			pipelines: fakePipelines{items: []core.Pipeline{pipeline("team-a", "a", "custom", true), pipeline("team-a", "b", "custom", false)}}},
		{name: "same name in another namespace", check: isNil,
			pipelines: fakePipelines{items: []core.Pipeline{pipeline("team-b", "a", "custom", false)}}},
		{name: "admission refuses first", validate: func(context.Context, runtime.Object) error { return admissionErr },
			pipelines: fakePipelines{items: []core.Pipeline{pipeline("team-a", "a", "custom", false)}},
			check:     apierrors.IsForbidden},
		{name: "status errors of the list pass through", pipelines: fakePipelines{err: apierrors.NewTooManyRequests("cache not ready", 1)},
			check: apierrors.IsTooManyRequests},
		{name: "other list errors are internal errors with context", pipelines: fakePipelines{err: errors.New("boom")},
			check: apierrors.IsInternalError, want: `Internal error occurred: listing the pipelines of namespace team-a that may use resourceprofiles.core.calyptia.com "custom": boom`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The request's namespace is not the object's: the object's counts.
			ctx := genericapirequest.WithNamespace(context.Background(), "elsewhere")
			err := ResourceProfiles(tt.pipelines).DeleteValidation(tt.validate)(ctx, profile)
			if !tt.check(err) {
				t.Fatalf("err = %v", err)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("message = %q\nwant      %q", err.Error(), tt.want)
			}
		})
	}
}

func isNil(err error) bool { return err == nil }
