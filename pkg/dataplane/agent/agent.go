// Package agent is the data plane agent's control loop: it follows one core instance's pipelines,
// secrets and resource profiles through the management plane's API (informers of the generated
// clientset), has a runtime run each pipeline, reports status and Events back on the pipeline,
// holds a finalizer so that deleting a pipeline removes what runs it first, and heartbeats the
// core instance. The Kubernetes API is its only channel to the management plane.
package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	clientset "github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned/scheme"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
	listers "github.com/calyptia/core-management-plane/pkg/generated/listers/core/v1"
)

// FinalizerPrefix starts the agent's finalizer on the pipelines it runs; the core instance's
// name follows, so that the agent a pipeline moved away from releases only its own hold.
const FinalizerPrefix = "data-plane.core.calyptia.com/"

// FieldManager names the agent's writes.
const FieldManager = "core-operator"

// Config is what an Agent needs.
type Config struct {
	// Client reaches core.calyptia.com; Events reaches the management cluster's Events.
	Client clientset.Interface
	Events kubernetes.Interface
	// Namespace and CoreInstance name the agent's core instance.
	Namespace, CoreInstance string
	// Runtime runs the pipelines.
	Runtime dataplane.Runtime
	// Describe says what heartbeats report about the agent on core instance ci.
	Describe func(ci *v1.CoreInstance) Info
	// HeartbeatInterval is how often the core instance's status is refreshed (default 30 s).
	HeartbeatInterval time.Duration
	// Workers is the number of pipelines synced at once (default 4).
	Workers int
}

// Info is what heartbeats report about the agent.
type Info struct {
	AgentVersion     string
	FluentBitVersion string
	Cluster          *v1.CoreInstanceCluster
}

// Agent runs the pipelines of one core instance.
type Agent struct {
	cfg Config

	pipelineFactory, objectFactory, instanceFactory informers.SharedInformerFactory

	pipelines     listers.PipelineLister
	pipelineIndex cache.Indexer
	secrets       listers.PipelineSecretLister
	profiles      listers.ResourceProfileLister
	instances     listers.CoreInstanceLister
	synced        []cache.InformerSynced

	queue    workqueue.TypedRateLimitingInterface[dataplane.Key]
	recorder record.EventRecorder
	events   record.EventBroadcaster

	builtinMu sync.Mutex
	builtin   map[string]*v1.ResourceProfileSpec
}

// Indexes of the pipeline informer: which pipelines use a secret or a profile.
const (
	bySecret  = "secret"
	byProfile = "profile"
)

// New registers the agent's informers; Run starts them.
func New(cfg Config) (*Agent, error) {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	a := &Agent{
		cfg:     cfg,
		builtin: map[string]*v1.ResourceProfileSpec{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[dataplane.Key](),
			workqueue.TypedRateLimitingQueueConfig[dataplane.Key]{Name: "pipelines"}),
	}
	resync := 10 * time.Minute
	ns := informers.WithNamespace(cfg.Namespace)
	// Only this core instance's pipelines: the server filters, and its watch cache sends each
	// change only to the agent of the pipeline's core instance.
	a.pipelineFactory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, resync, ns,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector(v1.PipelineCoreInstanceField, cfg.CoreInstance).String()
		}))
	a.objectFactory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, resync, ns)
	a.instanceFactory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, resync, ns,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.CoreInstance).String()
		}))

	pipelineInformer := a.pipelineFactory.Core().V1().Pipelines()
	if err := pipelineInformer.Informer().AddIndexers(cache.Indexers{
		bySecret: func(obj any) ([]string, error) { return obj.(*v1.Pipeline).Spec.Secrets, nil },
		byProfile: func(obj any) ([]string, error) {
			return []string{v1.PipelineResourceProfile(&obj.(*v1.Pipeline).Spec)}, nil
		},
	}); err != nil {
		return nil, fmt.Errorf("indexing pipelines: %w", err)
	}
	a.pipelines = pipelineInformer.Lister()
	a.pipelineIndex = pipelineInformer.Informer().GetIndexer()
	// A handler's registration error only happens on a stopped informer.
	_, _ = pipelineInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    a.enqueueObject,
		UpdateFunc: func(_, obj any) { a.enqueueObject(obj) },
		DeleteFunc: a.enqueueObject,
	})

	secretInformer := a.objectFactory.Core().V1().PipelineSecrets()
	a.secrets = secretInformer.Lister()
	_, _ = secretInformer.Informer().AddEventHandler(a.referrers(bySecret))
	profileInformer := a.objectFactory.Core().V1().ResourceProfiles()
	a.profiles = profileInformer.Lister()
	_, _ = profileInformer.Informer().AddEventHandler(a.referrers(byProfile))

	instanceInformer := a.instanceFactory.Core().V1().CoreInstances()
	a.instances = instanceInformer.Lister()
	_, _ = instanceInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { a.enqueueAll() },
		// Heartbeats change only status; a spec change (image, Services) concerns every pipeline.
		UpdateFunc: func(old, cur any) {
			if old.(*v1.CoreInstance).Generation != cur.(*v1.CoreInstance).Generation {
				a.enqueueAll()
			}
		},
	})
	a.synced = []cache.InformerSynced{
		pipelineInformer.Informer().HasSynced, secretInformer.Informer().HasSynced,
		profileInformer.Informer().HasSynced, instanceInformer.Informer().HasSynced,
	}

	a.events = record.NewBroadcaster(record.WithContext(context.Background()))
	a.recorder = a.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "core-operator", Host: cfg.CoreInstance})
	return a, nil
}

// Enqueue asks for a pipeline to be synced; runtimes call it when what runs a pipeline changes.
func (a *Agent) Enqueue(key dataplane.Key) { a.queue.Add(key) }

func (a *Agent) enqueueObject(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if p, ok := obj.(*v1.Pipeline); ok {
		a.queue.Add(cache.MetaObjectToName(p))
	}
}

func (a *Agent) enqueueAll() {
	for _, key := range a.pipelineIndex.ListKeys() {
		if name, err := cache.ParseObjectName(key); err == nil {
			a.queue.Add(name)
		}
	}
}

// referrers enqueues the pipelines that refer to a changed secret or profile.
func (a *Agent) referrers(index string) cache.ResourceEventHandler {
	enqueue := func(obj any) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		m, ok := obj.(metav1.Object)
		if !ok {
			return
		}
		users, _ := a.pipelineIndex.ByIndex(index, m.GetName())
		for _, u := range users {
			a.enqueueObject(u)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}

// Run starts the informers and runs the agent until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer a.queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("coreInstance", klog.KRef(a.cfg.Namespace, a.cfg.CoreInstance))
	ctx = klog.NewContext(ctx, logger)
	a.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.cfg.Events.CoreV1().Events("")})
	defer a.events.Shutdown()

	for _, f := range []informers.SharedInformerFactory{a.pipelineFactory, a.objectFactory, a.instanceFactory} {
		f.Start(ctx.Done())
		defer f.Shutdown()
	}
	if !cache.WaitForNamedCacheSyncWithContext(ctx, a.synced...) {
		return fmt.Errorf("waiting for the pipeline caches: %w", ctx.Err())
	}
	logger.Info("Data plane agent started", "pipelines", len(a.pipelineIndex.ListKeys()))

	var wg sync.WaitGroup
	wg.Go(func() { wait.UntilWithContext(ctx, a.heartbeat, a.cfg.HeartbeatInterval) })
	// Pipelines deleted or moved away while the agent was not running still have workloads.
	wg.Go(func() { wait.UntilWithContext(ctx, a.collectOrphans, 5*time.Minute) })
	for range a.cfg.Workers {
		wg.Go(func() { wait.UntilWithContext(ctx, a.work, time.Second) })
	}
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	logger.Info("Data plane agent stopped")
	return nil
}

func (a *Agent) collectOrphans(context.Context) {
	for _, key := range a.cfg.Runtime.Pipelines() {
		if _, err := a.pipelines.Pipelines(key.Namespace).Get(key.Name); apierrors.IsNotFound(err) {
			a.queue.Add(key)
		}
	}
}

func (a *Agent) work(ctx context.Context) {
	for a.next(ctx) {
	}
}

func (a *Agent) next(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	retryAfter, err := a.sync(ctx, key)
	switch {
	case err != nil:
		if apierrors.IsConflict(err) {
			// The informer has not delivered the newest pipeline yet.
			klog.FromContext(ctx).V(4).Info("Pipeline changed while syncing; retrying", "pipeline", key)
		} else {
			utilruntime.HandleErrorWithContext(ctx, err, "Syncing pipeline", "pipeline", key)
		}
		a.queue.AddRateLimited(key)
	case retryAfter > 0:
		a.queue.Forget(key)
		a.queue.AddAfter(key, retryAfter)
	default:
		a.queue.Forget(key)
	}
	return true
}

// finalizer is this agent's finalizer.
func (a *Agent) finalizer() string { return FinalizerPrefix + a.cfg.CoreInstance }

func (a *Agent) hasFinalizer(p *v1.Pipeline) bool {
	return slices.Contains(p.Finalizers, a.finalizer())
}
