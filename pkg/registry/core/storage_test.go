package core_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	"k8s.io/utils/ptr"

	"github.com/calyptia/core-management-plane/internal/pgtest"
	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/install"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	registry "github.com/calyptia/core-management-plane/pkg/registry/core"
	"github.com/calyptia/core-management-plane/pkg/storage/postgres"
)

// optsGetter puts every resource on one PostgreSQL backend, with the watch cache in front, as the
// server does.
type optsGetter struct {
	backend *postgres.Backend
	codec   runtime.Codec
}

func (g optsGetter) GetRESTOptions(gr schema.GroupResource, _ runtime.Object) (generic.RESTOptions, error) {
	cfg := storagebackend.NewDefaultConfig("/registry", g.codec)
	cfg.Transformer = identity.NewEncryptCheckTransformer()
	return generic.RESTOptions{
		StorageConfig:           cfg.ForResource(gr),
		Decorator:               g.backend.Decorator(),
		DeleteCollectionWorkers: 1,
		ResourcePrefix:          gr.Group + "/" + gr.Resource,
	}, nil
}

func newStorage(t *testing.T) map[string]rest.Storage {
	t.Helper()
	pool, _ := pgtest.NewPool(t)
	backend, err := postgres.NewBackend(context.Background(), pool, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(backend.Close)
	scheme := runtime.NewScheme()
	install.Install(scheme)
	codec := serializer.NewCodecFactory(scheme).LegacyCodec(v1.SchemeGroupVersion)
	storage, err := registry.NewStorage(scheme, optsGetter{backend: backend, codec: codec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range storage {
			s.Destroy()
		}
	})
	// Lists are served by the watch cache, which answers 429 until its first
	// sync: wait for every resource's cache, as the server's readiness does.
	for name, s := range storage {
		lister, ok := s.(rest.Lister)
		if !ok || strings.Contains(name, "/") {
			continue
		}
		err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, wait.ForeverTestTimeout, true, func(ctx context.Context) (bool, error) {
			_, err := lister.List(nsContext("default"), &metainternalversion.ListOptions{})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("watch cache of %s never became ready: %v", name, err)
		}
	}
	return storage
}

func nsContext(ns string) context.Context {
	return genericapirequest.WithNamespace(context.Background(), ns)
}

const config = `[INPUT]
    name forward

[OUTPUT]
    name  stdout
    match *
`

func newPipeline(ns, name, coreInstance string) *core.Pipeline {
	return &core.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: core.PipelineSpec{
			CoreInstance: coreInstance, Config: config, ConfigFormat: core.ConfigFormatClassic,
			Kind: core.PipelineKindDeployment, Replicas: ptr.To[int32](1), ResourceProfile: core.DefaultResourceProfile,
			DeploymentStrategy: core.DeploymentStrategyRollingUpdate, ServiceType: corev1.ServiceTypeClusterIP,
		},
	}
}

func TestNewStorageKeys(t *testing.T) {
	storage := newStorage(t)
	var keys []string
	for k := range storage {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"coreinstances", "coreinstances/status", "pipelines", "pipelines/scale", "pipelines/status", "pipelines/tap", "pipelinesecrets", "resourceprofiles"}
	if len(keys) != len(want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("keys = %v, want %v", keys, want)
		}
	}
	for _, k := range []string{"coreinstances", "pipelines", "pipelinesecrets", "resourceprofiles"} {
		if cp, ok := storage[k].(rest.CategoriesProvider); !ok || len(cp.Categories()) != 1 || cp.Categories()[0] != "calyptia" {
			t.Errorf("%s is not in the calyptia category", k)
		}
		if sp, ok := storage[k].(rest.ShortNamesProvider); !ok || len(sp.ShortNames()) == 0 {
			t.Errorf("%s has no short name", k)
		}
	}
}

func TestPipelineSubresources(t *testing.T) {
	storage := newStorage(t)
	pipelines := storage["pipelines"].(rest.StandardStorage)
	status := storage["pipelines/status"].(rest.Patcher)
	scale := storage["pipelines/scale"].(rest.Patcher)
	ctx := nsContext("team-a")

	p := newPipeline("team-a", "logs", "edge")
	p.Status.Phase = core.PipelinePhaseFailed // ignored on create
	obj, err := pipelines.Create(ctx, p, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created := obj.(*core.Pipeline)
	if created.Status.Phase != core.PipelinePhaseNew || created.Generation != 1 {
		t.Fatalf("created: phase %q generation %d, want New and 1", created.Status.Phase, created.Generation)
	}

	// The data plane reports status; the spec it sends along is ignored.
	report := created.DeepCopy()
	report.Status = core.PipelineStatus{Phase: core.PipelinePhaseStarted, Replicas: 1, ReadyReplicas: 1, Selector: "app.kubernetes.io/instance=logs", ObservedGeneration: 1}
	report.Spec.Replicas = ptr.To[int32](7)
	obj, _, err = status.Update(ctx, "logs", rest.DefaultUpdatedObjectInfo(report), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reported := obj.(*core.Pipeline)
	if *reported.Spec.Replicas != 1 || reported.Status.Phase != core.PipelinePhaseStarted || reported.Generation != 1 {
		t.Fatalf("after status update: replicas %d phase %q generation %d", *reported.Spec.Replicas, reported.Status.Phase, reported.Generation)
	}

	// A user update keeps the reported status and bumps the generation.
	edit := reported.DeepCopy()
	edit.Spec.Image = "ghcr.io/calyptia/core/calyptia-fluent-bit:26.8.5"
	edit.Status = core.PipelineStatus{}
	obj, _, err = pipelines.Update(ctx, "logs", rest.DefaultUpdatedObjectInfo(edit), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.(*core.Pipeline); got.Status.Phase != core.PipelinePhaseStarted || got.Generation != 2 {
		t.Fatalf("after spec update: phase %q generation %d, want Started and 2", got.Status.Phase, got.Generation)
	}

	// Scale reads spec.replicas and the reported selector, and writes spec.replicas.
	obj, err = scale.Get(ctx, "logs", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := obj.(*autoscalingv1.Scale)
	if s.Spec.Replicas != 1 || s.Status.Selector != "app.kubernetes.io/instance=logs" {
		t.Fatalf("scale = %+v", s)
	}
	s.Spec.Replicas = 4
	if _, _, err := scale.Update(ctx, "logs", rest.DefaultUpdatedObjectInfo(s), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err = pipelines.Get(ctx, "logs", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.(*core.Pipeline); *got.Spec.Replicas != 4 || got.Generation != 3 {
		t.Errorf("after scale: replicas %d generation %d, want 4 and 3", *got.Spec.Replicas, got.Generation)
	}
	// The Scale carried the old resourceVersion: a second write with it conflicts.
	s.Spec.Replicas = 5
	if _, _, err := scale.Update(ctx, "logs", rest.DefaultUpdatedObjectInfo(s), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale scale update: err = %v, want 409", err)
	}

	// Kind cannot change.
	obj, _ = pipelines.Get(ctx, "logs", &metav1.GetOptions{})
	edit = obj.(*core.Pipeline)
	edit.Spec.Kind, edit.Spec.Replicas = core.PipelineKindDaemonSet, nil
	if _, _, err := pipelines.Update(ctx, "logs", rest.DefaultUpdatedObjectInfo(edit), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("kind change: err = %v, want 422", err)
	}
}

func TestPipelineFieldSelectors(t *testing.T) {
	storage := newStorage(t)
	pipelines := storage["pipelines"].(rest.StandardStorage)
	ctx := nsContext("team-a")
	for _, p := range []*core.Pipeline{newPipeline("team-a", "a1", "edge-a"), newPipeline("team-a", "a2", "edge-a"), newPipeline("team-a", "b1", "edge-b")} {
		if _, err := pipelines.Create(ctx, p, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		selector string
		want     []string
	}{
		{"spec.coreInstance=edge-a", []string{"a1", "a2"}},
		{"spec.coreInstance=edge-b", []string{"b1"}},
		{"spec.coreInstance!=edge-a", []string{"b1"}},
		{"status.phase=New", []string{"a1", "a2", "b1"}},
		{"status.phase=Started", nil},
	}
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			sel, err := fields.ParseSelector(tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := pipelines.List(ctx, &metainternalversion.ListOptions{FieldSelector: sel})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range obj.(*core.PipelineList).Items {
				got = append(got, p.Name)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestResourceProfilesBuiltins(t *testing.T) {
	storage := newStorage(t)
	profiles := storage["resourceprofiles"].(rest.StandardStorage)
	ctx := nsContext("team-a")
	custom := &core.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: "custom", Namespace: "team-a"}, Spec: core.ResourceProfileSpec{StorageMaxChunksUp: 64}}
	if _, err := profiles.Create(ctx, custom, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	names := func(t *testing.T, ctx context.Context, opts *metainternalversion.ListOptions) ([]string, string) {
		t.Helper()
		obj, err := profiles.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		l := obj.(*core.ResourceProfileList)
		var out []string
		for _, p := range l.Items {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		return out, l.Continue
	}
	builtinSel, _ := labels.Parse("core.calyptia.com/builtin!=true")
	tests := []struct {
		name string
		ctx  context.Context
		opts *metainternalversion.ListOptions
		want []string
	}{
		// Built-ins resolve by name but are never listed: a namespace's lists
		// must be able to come back empty for it to be deleted.
		{name: "a namespace with a stored profile lists it alone", ctx: ctx, opts: &metainternalversion.ListOptions{},
			want: []string{"team-a/custom"}},
		{name: "an empty namespace lists nothing", ctx: nsContext("team-b"), opts: &metainternalversion.ListOptions{},
			want: nil},
		{name: "label selector", ctx: ctx, opts: &metainternalversion.ListOptions{LabelSelector: builtinSel},
			want: []string{"team-a/custom"}},
		{name: "field selector on a built-in name", ctx: ctx, opts: &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "high-performance-optimal-throughput")},
			want: nil},
		{name: "all namespaces lists stored profiles only", ctx: context.Background(), opts: &metainternalversion.ListOptions{},
			want: []string{"team-a/custom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := names(t, tt.ctx, tt.opts)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}

	// Paging lists every stored profile once.
	for _, name := range []string{"custom2", "custom3"} {
		p := &core.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"}}
		if _, err := profiles.Create(ctx, p, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	opts := &metainternalversion.ListOptions{Limit: 1}
	for page := 0; page < 10; page++ {
		got, cont := names(t, ctx, opts)
		all = append(all, got...)
		if cont == "" {
			break
		}
		opts = &metainternalversion.ListOptions{Limit: 1, Continue: cont}
	}
	if len(all) != 3 {
		t.Errorf("paged list = %v, want the 3 stored profiles once each", all)
	}

	// Built-ins resolve by name in any namespace and cannot be changed.
	obj, err := profiles.Get(nsContext("anywhere"), core.ResourceProfileBestEffortLowResource, &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := obj.(*core.ResourceProfile); p.Namespace != "anywhere" || p.Spec.StorageBacklogMemLimit != "5M" {
		t.Errorf("built-in = %+v", p)
	}
	if _, _, err := profiles.Delete(ctx, core.ResourceProfileBestEffortLowResource, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting a built-in: err = %v, want 403", err)
	}
	if _, err := profiles.Get(ctx, "missing", &metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("missing profile: err = %v, want 404", err)
	}
}
