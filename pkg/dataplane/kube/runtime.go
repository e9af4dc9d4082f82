// Package kube runs pipelines as Kubernetes workloads in the core instance's target namespace:
// per pipeline a ConfigMap (rendered config and files), a Secret (secret values, as environment
// variables), a Deployment, DaemonSet or StatefulSet, a Service per port and an optional
// HorizontalPodAutoscaler, all applied with server-side apply and labelled with the pipeline
// and core instance, so the agent finds and removes them from the labels alone (owner
// references cannot point into another cluster).
package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
	"github.com/calyptia/core-management-plane/pkg/dataplane/scrape"
)

// Runtime runs pipelines as workloads in one namespace of a cluster.
type Runtime struct {
	client kubernetes.Interface
	target Target
	notify func(dataplane.Key)

	factory      informers.SharedInformerFactory
	configMaps   corelisters.ConfigMapLister
	secrets      corelisters.SecretLister
	services     corelisters.ServiceLister
	pods         corelisters.PodLister
	deployments  appslisters.DeploymentLister
	daemonSets   appslisters.DaemonSetLister
	statefulSets appslisters.StatefulSetLister
	hpas         autoscalinglisters.HorizontalPodAutoscalerLister
	synced       []cache.InformerSynced

	applied applied

	// httpPorts are the pipelines' Fluent Bit HTTP server ports, as last applied, for scraping.
	portsMu   sync.Mutex
	httpPorts map[dataplane.Key]int32
}

var _ dataplane.Runtime = &Runtime{}

// New returns a runtime that creates workloads through client as target says, and calls notify
// with a pipeline's key whenever one of its objects changes. Start it before use.
func New(client kubernetes.Interface, target Target, notify func(dataplane.Key)) *Runtime {
	owner := labels.SelectorFromSet(target.OwnerLabels()).String()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Hour,
		informers.WithNamespace(target.Namespace),
		// Only this core instance's objects: the namespace may hold anything else.
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = owner }))
	r := &Runtime{client: client, target: target, notify: notify, factory: factory,
		applied: applied{seen: map[string]appliedState{}}, httpPorts: map[dataplane.Key]int32{}}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    r.changed,
		UpdateFunc: func(_, obj any) { r.changed(obj) },
		DeleteFunc: r.changed,
	}
	add := func(inf cache.SharedIndexInformer) {
		// A handler's registration error only happens on a stopped informer.
		_, _ = inf.AddEventHandler(handler)
		r.synced = append(r.synced, inf.HasSynced)
	}
	core, apps := factory.Core().V1(), factory.Apps().V1()
	r.configMaps, r.secrets, r.services, r.pods = core.ConfigMaps().Lister(), core.Secrets().Lister(), core.Services().Lister(), core.Pods().Lister()
	r.deployments, r.daemonSets, r.statefulSets = apps.Deployments().Lister(), apps.DaemonSets().Lister(), apps.StatefulSets().Lister()
	r.hpas = factory.Autoscaling().V2().HorizontalPodAutoscalers().Lister()
	for _, inf := range []cache.SharedIndexInformer{
		core.ConfigMaps().Informer(), core.Secrets().Informer(), core.Services().Informer(), core.Pods().Informer(),
		apps.Deployments().Informer(), apps.DaemonSets().Informer(), apps.StatefulSets().Informer(),
		factory.Autoscaling().V2().HorizontalPodAutoscalers().Informer(),
	} {
		add(inf)
	}
	return r
}

// Start starts the informers and waits until they have synced.
func (r *Runtime) Start(ctx context.Context) error {
	r.factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, r.synced...) {
		return fmt.Errorf("waiting for the caches of namespace %s: %w", r.target.Namespace, ctx.Err())
	}
	return nil
}

// Shutdown stops the informers.
func (r *Runtime) Shutdown() { r.factory.Shutdown() }

func (r *Runtime) changed(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if key, ok := keyOf(m); ok {
		r.notify(key)
	}
}

func keyOf(m metav1.Object) (dataplane.Key, bool) {
	l := m.GetLabels()
	name, ns := l[LabelPipeline], l[LabelNamespace]
	return dataplane.Key{Namespace: ns, Name: name}, name != "" && ns != ""
}

// RenderOptions places files beside the config in the mounted ConfigMap and secrets in the
// environment.
func (r *Runtime) RenderOptions(*v1.Pipeline) (render.Options, error) {
	return render.Options{FilesDir: ConfigDir, StoragePath: StoragePath}, nil
}

// Apply creates or updates the pipeline's objects, deletes those it no longer needs and reports
// the workload's state.
func (r *Runtime) Apply(ctx context.Context, spec *dataplane.Spec) (*dataplane.Observation, error) {
	p := spec.Pipeline
	d := r.target.Build(p, spec.Instance, spec.Rendered, spec.Profile)
	if f := r.checkOwnership(p, d); f != nil {
		return &dataplane.Observation{Failure: f}, nil
	}
	ns := r.target.Namespace
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)}

	if _, err := apply(ctx, &r.applied, d.ConfigMap, r.configMaps.ConfigMaps(ns), func(ctx context.Context, data []byte) (*corev1.ConfigMap, error) {
		return r.client.CoreV1().ConfigMaps(ns).Patch(ctx, d.ConfigMap.Name, types.ApplyPatchType, data, opts)
	}); err != nil {
		return nil, err
	}
	if d.Secret != nil {
		if _, err := apply(ctx, &r.applied, d.Secret, r.secrets.Secrets(ns), func(ctx context.Context, data []byte) (*corev1.Secret, error) {
			return r.client.CoreV1().Secrets(ns).Patch(ctx, d.Secret.Name, types.ApplyPatchType, data, opts)
		}); err != nil {
			return nil, err
		}
	}
	var (
		obs *dataplane.Observation
		err error
	)
	switch {
	case d.Deployment != nil:
		var dep *appsv1.Deployment
		if dep, err = apply(ctx, &r.applied, d.Deployment, r.deployments.Deployments(ns), func(ctx context.Context, data []byte) (*appsv1.Deployment, error) {
			return r.client.AppsV1().Deployments(ns).Patch(ctx, p.Name, types.ApplyPatchType, data, opts)
		}); err == nil {
			obs = observeDeployment(dep)
		}
	case d.DaemonSet != nil:
		var ds *appsv1.DaemonSet
		if ds, err = apply(ctx, &r.applied, d.DaemonSet, r.daemonSets.DaemonSets(ns), func(ctx context.Context, data []byte) (*appsv1.DaemonSet, error) {
			return r.client.AppsV1().DaemonSets(ns).Patch(ctx, p.Name, types.ApplyPatchType, data, opts)
		}); err == nil {
			obs = observeDaemonSet(ds)
		}
	case d.StatefulSet != nil:
		var sts *appsv1.StatefulSet
		if sts, err = apply(ctx, &r.applied, d.StatefulSet, r.statefulSets.StatefulSets(ns), func(ctx context.Context, data []byte) (*appsv1.StatefulSet, error) {
			return r.client.AppsV1().StatefulSets(ns).Patch(ctx, p.Name, types.ApplyPatchType, data, opts)
		}); err == nil {
			obs = observeStatefulSet(sts)
		}
	}
	if err != nil {
		return nil, err
	}

	services := map[string]*corev1.Service{}
	for _, svc := range d.Services {
		got, err := apply(ctx, &r.applied, svc, r.services.Services(ns), func(ctx context.Context, data []byte) (*corev1.Service, error) {
			return r.client.CoreV1().Services(ns).Patch(ctx, svc.Name, types.ApplyPatchType, data, opts)
		})
		if err != nil {
			return nil, err
		}
		services[svc.Name] = got
	}
	if d.HPA != nil {
		if _, err := apply(ctx, &r.applied, d.HPA, r.hpas.HorizontalPodAutoscalers(ns), func(ctx context.Context, data []byte) (*autoscalingv2.HorizontalPodAutoscaler, error) {
			return r.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Patch(ctx, d.HPA.Name, types.ApplyPatchType, data, opts)
		}); err != nil {
			return nil, err
		}
	}
	if err := r.prune(ctx, p.Name, d); err != nil {
		return nil, err
	}

	r.portsMu.Lock()
	r.httpPorts[dataplane.Key{Namespace: p.Namespace, Name: p.Name}] = spec.Rendered.HTTPPort
	r.portsMu.Unlock()
	obs.Selector = SelectorString(d.Selector)
	for _, port := range spec.Rendered.Ports {
		port.Endpoint = endpoint(services[serviceName(p.Name, port)], port)
		obs.Ports = append(obs.Ports, port)
	}
	r.observePods(p.Name, spec.Rendered.TapPort, obs)
	return obs, nil
}

// lister gets an object of one kind from the informer cache.
type lister[T any] interface {
	Get(name string) (T, error)
}

// applied remembers, per object, the digest the agent last applied and the object's version
// right after, so that an object someone changed since (kubectl edit) is applied again.
type applied struct {
	mu   sync.Mutex
	seen map[string]appliedState
}

type appliedState struct{ digest, version string }

// version is what changes when someone changes the object: the generation where there is one
// (so workloads' status updates do not count), else the resource version.
func version(m metav1.Object) string {
	if g := m.GetGeneration(); g > 0 {
		return "g" + strconv.FormatInt(g, 10)
	}
	return "rv" + m.GetResourceVersion()
}

func (a *applied) unchanged(key, digest string, cur metav1.Object) bool {
	if cur.GetAnnotations()[AnnotationApplied] != digest {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.seen[key]
	if !ok {
		// First sight since the agent started: trust the annotation, or a restart would
		// re-apply every object of every pipeline.
		a.seen[key] = appliedState{digest, version(cur)}
		return true
	}
	return st.digest == digest && st.version == version(cur)
}

func (a *applied) record(key, digest string, obj metav1.Object) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[key] = appliedState{digest, version(obj)}
}

func (a *applied) forget(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seen, key)
}

// apply sends obj with server-side apply unless the cached object already carries the same
// desired state and nobody changed it since; either way it returns the object as it is now.
func apply[T metav1.Object](ctx context.Context, a *applied, obj T, cached lister[T], patch func(ctx context.Context, data []byte) (T, error)) (T, error) {
	kind := kindOf(obj)
	data, err := json.Marshal(obj)
	if err != nil {
		return obj, fmt.Errorf("encoding %s %s: %w", kind, obj.GetName(), err)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:16])
	key := kind + "/" + obj.GetName()
	if cur, err := cached.Get(obj.GetName()); err == nil && a.unchanged(key, digest, cur) {
		return cur, nil
	}
	ann := obj.GetAnnotations()
	ann[AnnotationApplied] = digest
	obj.SetAnnotations(ann)
	if data, err = json.Marshal(obj); err != nil {
		return obj, fmt.Errorf("encoding %s %s: %w", kind, obj.GetName(), err)
	}
	got, err := patch(ctx, data)
	if err != nil {
		return got, fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err)
	}
	a.record(key, digest, got)
	klog.FromContext(ctx).V(2).Info("Applied", "kind", kind, "object", klog.KObj(got))
	return got, nil
}

func kindOf(obj any) string {
	if o, ok := obj.(runtime.Object); ok {
		if k := o.GetObjectKind().GroupVersionKind().Kind; k != "" {
			return k
		}
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", obj), "*")
}

// checkOwnership refuses to take over an object of the same name that another pipeline or
// another tool made: applying would silently rewrite it.
func (r *Runtime) checkOwnership(p *v1.Pipeline, d *Desired) *dataplane.Failure {
	ns := r.target.Namespace
	// The informers only see this core instance's objects, so anything else of these names is
	// found with a direct read; the cache answers for ours.
	check := func(kind, name string, get func() (metav1.Object, error)) *dataplane.Failure {
		obj, err := get()
		if err != nil {
			return nil // absent (or unreadable: the apply will say so)
		}
		if obj.GetLabels()[LabelPipeline] == p.Name && obj.GetLabels()[LabelCoreInstance] == r.target.CoreInstance &&
			obj.GetLabels()[LabelNamespace] == r.target.SourceNamespace {
			return nil
		}
		return &dataplane.Failure{Reason: "NameTaken", Message: fmt.Sprintf(
			"%s %s/%s exists and belongs to something else; rename the pipeline or remove the %s", kind, ns, name, kind)}
	}
	ctx := context.Background()
	var name string
	var get func() (metav1.Object, error)
	switch {
	case d.Deployment != nil:
		name = d.Deployment.Name
		get = func() (metav1.Object, error) {
			if o, err := r.deployments.Deployments(ns).Get(name); err == nil {
				return o, nil
			}
			return r.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
		}
		if f := check("Deployment", name, get); f != nil {
			return f
		}
	case d.DaemonSet != nil:
		name = d.DaemonSet.Name
		if f := check("DaemonSet", name, func() (metav1.Object, error) {
			if o, err := r.daemonSets.DaemonSets(ns).Get(name); err == nil {
				return o, nil
			}
			return r.client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
		}); f != nil {
			return f
		}
	case d.StatefulSet != nil:
		name = d.StatefulSet.Name
		if f := check("StatefulSet", name, func() (metav1.Object, error) {
			if o, err := r.statefulSets.StatefulSets(ns).Get(name); err == nil {
				return o, nil
			}
			return r.client.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
		}); f != nil {
			return f
		}
	}
	if _, err := r.configMaps.ConfigMaps(ns).Get(d.ConfigMap.Name); apierrors.IsNotFound(err) {
		if f := check("ConfigMap", d.ConfigMap.Name, func() (metav1.Object, error) {
			return r.client.CoreV1().ConfigMaps(ns).Get(ctx, d.ConfigMap.Name, metav1.GetOptions{ResourceVersion: "0"})
		}); f != nil {
			return f
		}
	}
	return nil
}

// prune deletes the pipeline's objects that d no longer has: Services of ports that went, the
// Secret of a config that no longer references secrets, an HPA without autoscaling.
func (r *Runtime) prune(ctx context.Context, pipeline string, d *Desired) error {
	sel := labels.SelectorFromSet(r.target.Selector(pipeline))
	ns := r.target.Namespace
	keep := map[string]bool{}
	for _, s := range d.Services {
		keep[s.Name] = true
	}
	services, _ := r.services.Services(ns).List(sel)
	for _, s := range services {
		if !keep[s.Name] {
			if err := ignoreNotFound(r.client.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})); err != nil {
				return fmt.Errorf("deleting Service %s: %w", s.Name, err)
			}
		}
	}
	if d.Secret == nil {
		if s, err := r.secrets.Secrets(ns).Get(secretName(pipeline)); err == nil && sel.Matches(labels.Set(s.Labels)) {
			if err := ignoreNotFound(r.client.CoreV1().Secrets(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})); err != nil {
				return fmt.Errorf("deleting Secret %s: %w", s.Name, err)
			}
		}
	}
	if d.HPA == nil {
		if h, err := r.hpas.HorizontalPodAutoscalers(ns).Get(pipeline); err == nil && sel.Matches(labels.Set(h.Labels)) {
			if err := ignoreNotFound(r.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Delete(ctx, h.Name, metav1.DeleteOptions{})); err != nil {
				return fmt.Errorf("deleting HorizontalPodAutoscaler %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

// Remove deletes every object of the pipeline. Workloads go with foreground propagation, so
// they stay visible until their pods are gone and Remove reports done only then.
func (r *Runtime) Remove(ctx context.Context, key dataplane.Key) (bool, error) {
	if key.Namespace != r.target.SourceNamespace {
		return true, nil
	}
	r.portsMu.Lock()
	delete(r.httpPorts, key)
	r.portsMu.Unlock()
	sel := labels.SelectorFromSet(r.target.Selector(key.Name))
	ns := r.target.Namespace
	foreground := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}
	remaining := 0
	del := func(kind, name string, deleting bool, fn func() error) error {
		remaining++
		if deleting {
			return nil // on its way out
		}
		if err := ignoreNotFound(fn()); err != nil {
			return fmt.Errorf("deleting %s %s/%s: %w", kind, ns, name, err)
		}
		r.applied.forget(kind + "/" + name)
		klog.FromContext(ctx).V(2).Info("Deleted", "kind", kind, "object", klog.KRef(ns, name), "pipeline", key)
		return nil
	}
	deps, _ := r.deployments.Deployments(ns).List(sel)
	for _, o := range deps {
		if err := del("Deployment", o.Name, o.DeletionTimestamp != nil, func() error {
			return r.client.AppsV1().Deployments(ns).Delete(ctx, o.Name, foreground)
		}); err != nil {
			return false, err
		}
	}
	dss, _ := r.daemonSets.DaemonSets(ns).List(sel)
	for _, o := range dss {
		if err := del("DaemonSet", o.Name, o.DeletionTimestamp != nil, func() error {
			return r.client.AppsV1().DaemonSets(ns).Delete(ctx, o.Name, foreground)
		}); err != nil {
			return false, err
		}
	}
	stss, _ := r.statefulSets.StatefulSets(ns).List(sel)
	for _, o := range stss {
		if err := del("StatefulSet", o.Name, o.DeletionTimestamp != nil, func() error {
			return r.client.AppsV1().StatefulSets(ns).Delete(ctx, o.Name, foreground)
		}); err != nil {
			return false, err
		}
	}
	hpas, _ := r.hpas.HorizontalPodAutoscalers(ns).List(sel)
	for _, o := range hpas {
		if err := del("HorizontalPodAutoscaler", o.Name, o.DeletionTimestamp != nil, func() error {
			return r.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Delete(ctx, o.Name, metav1.DeleteOptions{})
		}); err != nil {
			return false, err
		}
	}
	svcs, _ := r.services.Services(ns).List(sel)
	for _, o := range svcs {
		if err := del("Service", o.Name, o.DeletionTimestamp != nil, func() error {
			return r.client.CoreV1().Services(ns).Delete(ctx, o.Name, metav1.DeleteOptions{})
		}); err != nil {
			return false, err
		}
	}
	// The config and secret go last: pods still running may need them to shut down cleanly.
	if remaining == 0 {
		secrets, _ := r.secrets.Secrets(ns).List(sel)
		for _, o := range secrets {
			if err := del("Secret", o.Name, o.DeletionTimestamp != nil, func() error {
				return r.client.CoreV1().Secrets(ns).Delete(ctx, o.Name, metav1.DeleteOptions{})
			}); err != nil {
				return false, err
			}
		}
		cms, _ := r.configMaps.ConfigMaps(ns).List(sel)
		for _, o := range cms {
			if err := del("ConfigMap", o.Name, o.DeletionTimestamp != nil, func() error {
				return r.client.CoreV1().ConfigMaps(ns).Delete(ctx, o.Name, metav1.DeleteOptions{})
			}); err != nil {
				return false, err
			}
		}
	}
	if remaining > 0 {
		return false, nil
	}
	pods, _ := r.pods.Pods(ns).List(sel)
	return len(pods) == 0, nil
}

// MetricsTargets lists the running pods of the pipelines applied since the agent started, at
// their Fluent Bit's HTTP server. The agent must reach pod IPs: it runs in the target cluster.
func (r *Runtime) MetricsTargets() []scrape.Target {
	r.portsMu.Lock()
	ports := make(map[dataplane.Key]int32, len(r.httpPorts))
	for k, v := range r.httpPorts {
		ports[k] = v
	}
	r.portsMu.Unlock()
	pods, err := r.pods.Pods(r.target.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []scrape.Target
	for _, pod := range pods {
		key, ok := keyOf(pod)
		port := ports[key]
		if !ok || port == 0 || pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
			continue
		}
		out = append(out, scrape.Target{Pipeline: key, Pod: pod.Name, Address: net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port)))})
	}
	return out
}

// Pipelines lists the pipelines that have objects in the namespace.
func (r *Runtime) Pipelines() []dataplane.Key {
	seen := map[dataplane.Key]bool{}
	add := func(m metav1.Object) {
		if k, ok := keyOf(m); ok {
			seen[k] = true
		}
	}
	all := labels.Everything()
	ns := r.target.Namespace
	if l, err := r.configMaps.ConfigMaps(ns).List(all); err == nil {
		for _, o := range l {
			add(o)
		}
	}
	if l, err := r.deployments.Deployments(ns).List(all); err == nil {
		for _, o := range l {
			add(o)
		}
	}
	if l, err := r.daemonSets.DaemonSets(ns).List(all); err == nil {
		for _, o := range l {
			add(o)
		}
	}
	if l, err := r.statefulSets.StatefulSets(ns).List(all); err == nil {
		for _, o := range l {
			add(o)
		}
	}
	if l, err := r.services.Services(ns).List(all); err == nil {
		for _, o := range l {
			add(o)
		}
	}
	out := make([]dataplane.Key, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// endpoint is where clients reach a port: the load balancer's address once it has one, else
// the Service's cluster IP.
func endpoint(svc *corev1.Service, port v1.PipelinePortStatus) string {
	if svc == nil {
		return ""
	}
	p := strconv.Itoa(int(port.ServicePort))
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		switch {
		case ing.IP != "":
			return net.JoinHostPort(ing.IP, p)
		case ing.Hostname != "":
			return net.JoinHostPort(ing.Hostname, p)
		}
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		return net.JoinHostPort(ip, p)
	}
	return ""
}

func observeDeployment(d *appsv1.Deployment) *dataplane.Observation {
	desired := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	o := &dataplane.Observation{
		Desired: desired, Replicas: s.Replicas, ReadyReplicas: s.ReadyReplicas, UpdatedReplicas: s.UpdatedReplicas,
		RolledOut: s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == desired && s.Replicas == desired,
	}
	for _, c := range s.Conditions {
		switch {
		case c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded":
			o.Failure = &dataplane.Failure{Reason: "ProgressDeadlineExceeded", Message: c.Message}
		case c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue:
			o.Failure = &dataplane.Failure{Reason: "ReplicaFailure", Message: c.Message}
		}
	}
	return o
}

func observeDaemonSet(d *appsv1.DaemonSet) *dataplane.Observation {
	s := d.Status
	return &dataplane.Observation{
		Desired: s.DesiredNumberScheduled, Replicas: s.CurrentNumberScheduled, ReadyReplicas: s.NumberReady, UpdatedReplicas: s.UpdatedNumberScheduled,
		RolledOut: s.ObservedGeneration >= d.Generation && s.UpdatedNumberScheduled == s.DesiredNumberScheduled &&
			s.CurrentNumberScheduled == s.DesiredNumberScheduled,
	}
}

func observeStatefulSet(d *appsv1.StatefulSet) *dataplane.Observation {
	desired := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	return &dataplane.Observation{
		Desired: desired, Replicas: s.Replicas, ReadyReplicas: s.ReadyReplicas, UpdatedReplicas: s.UpdatedReplicas,
		RolledOut: s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == desired && s.Replicas == desired &&
			(s.UpdateRevision == "" || s.CurrentRevision == s.UpdateRevision),
	}
}

// podFailures are the waiting reasons that do not go away by waiting.
var podFailures = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// observePods adds what the pods tell: containers that cannot start, pods no node can take, and
// the tap of the first ready pod.
func (r *Runtime) observePods(pipeline string, tapPort int32, o *dataplane.Observation) {
	pods, err := r.pods.Pods(r.target.Namespace).List(labels.SelectorFromSet(r.target.Selector(pipeline)))
	if err != nil {
		return
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && podFailures[w.Reason] && o.Failure == nil {
				msg := fmt.Sprintf("pod %s: container %s: %s", pod.Name, cs.Name, w.Reason)
				if w.Message != "" {
					msg += ": " + w.Message
				}
				if t := cs.LastTerminationState.Terminated; t != nil {
					msg += fmt.Sprintf(" (last exit code %d", t.ExitCode)
					if t.Message != "" {
						msg += ": " + strings.TrimSpace(t.Message)
					}
					msg += ")"
				}
				o.Failure = &dataplane.Failure{Reason: w.Reason, Message: msg}
			}
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && o.Waiting == "" {
				o.Waiting = fmt.Sprintf("pod %s cannot be scheduled: %s", pod.Name, c.Message)
			}
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && pod.Status.PodIP != "" && o.TapEndpoint == "" && tapPort > 0 {
				o.TapEndpoint = net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(tapPort)))
			}
		}
	}
}
