// Package pipelinerefs reports, in each pipeline's status conditions, whether
// the objects it refers to exist: its core instance, its resource profile and
// the pipeline secret keys and files its config references. References may be
// created in any order (kubectl apply -f dir/), so the API accepts dangling
// ones and this controller keeps the conditions current as objects come and go.
package pipelinerefs

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	clientset "github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
	listers "github.com/calyptia/core-management-plane/pkg/generated/listers/core/v1"
	"github.com/calyptia/core-management-plane/pkg/registry/core/pipeline/references"
)

// Controller keeps the ReferencesResolved and ConfigValid conditions of
// pipelines current.
type Controller struct {
	client clientset.Interface

	pipelines     listers.PipelineLister
	coreInstances listers.CoreInstanceLister
	profiles      listers.ResourceProfileLister
	secrets       listers.PipelineSecretLister
	synced        []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
}

// NewController registers its informers with factory; start the factory
// after this.
func NewController(client clientset.Interface, factory informers.SharedInformerFactory) *Controller {
	v1 := factory.Core().V1()
	c := &Controller{
		client:        client,
		pipelines:     v1.Pipelines().Lister(),
		coreInstances: v1.CoreInstances().Lister(),
		profiles:      v1.ResourceProfiles().Lister(),
		secrets:       v1.PipelineSecrets().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "pipeline-references"}),
	}

	// A handler's registration error only happens on a stopped informer.
	h := c.eventHandlers()
	pipelineInformer := v1.Pipelines().Informer()
	_, _ = pipelineInformer.AddEventHandler(h.pipelines)
	coreInstanceInformer := v1.CoreInstances().Informer()
	_, _ = coreInstanceInformer.AddEventHandler(h.coreInstances)
	profileInformer := v1.ResourceProfiles().Informer()
	_, _ = profileInformer.AddEventHandler(h.profiles)
	secretInformer := v1.PipelineSecrets().Informer()
	_, _ = secretInformer.AddEventHandler(h.secrets)
	c.synced = []cache.InformerSynced{
		pipelineInformer.HasSynced, coreInstanceInformer.HasSynced,
		profileInformer.HasSynced, secretInformer.HasSynced,
	}
	return c
}

// Run processes pipelines with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting pipeline references controller")
	defer logger.Info("Stopped pipeline references controller")

	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return
	}
	for range workers {
		go wait.UntilWithContext(ctx, c.work, time.Second)
	}
	<-ctx.Done()
}

func (c *Controller) work(ctx context.Context) {
	for c.next(ctx) {
	}
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		// A conflict only means the informer has not delivered the newest
		// pipeline yet: retry, without alarming anyone.
		if apierrors.IsConflict(err) {
			klog.FromContext(ctx).V(4).Info("Pipeline changed while syncing; retrying", "pipeline", key)
		} else {
			utilruntime.HandleErrorWithContext(ctx, err, "Syncing pipeline references", "pipeline", key)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) enqueuePipeline(obj any) {
	if p, ok := obj.(*corev1.Pipeline); ok {
		c.queue.Add(cache.MetaObjectToName(p))
	}
}

// handlers are what the events of each informer do.
type handlers struct {
	pipelines, coreInstances, profiles, secrets cache.ResourceEventHandler
}

func (c *Controller) eventHandlers() handlers {
	return handlers{
		pipelines: cache.ResourceEventHandlerFuncs{
			AddFunc: c.enqueuePipeline,
			UpdateFunc: func(old, obj any) {
				if referencesMayHaveChanged(old, obj) {
					c.enqueuePipeline(obj)
				}
			},
		},
		// What a pipeline reads of a core instance or a resource profile is whether it exists,
		// which an update never changes; agents update their core instance's status every 30
		// seconds, and each update would otherwise re-check every pipeline on the instance.
		coreInstances: c.referencedHandler(func(p *corev1.Pipeline, name string) bool {
			return p.Spec.CoreInstance == name
		}, nil),
		profiles: c.referencedHandler(func(p *corev1.Pipeline, name string) bool {
			return corev1.PipelineResourceProfile(&p.Spec) == name
		}, nil),
		secrets: c.referencedHandler(refersToSecret, secretKeysChanged),
	}
}

// referencedHandler enqueues the pipelines that refer to an object (match) when it comes or
// goes, and when it is updated in a way changed says matters (nil: never).
func (c *Controller) referencedHandler(match func(p *corev1.Pipeline, name string) bool, changed func(old, obj any) bool) cache.ResourceEventHandler {
	enqueue := func(obj any) { c.enqueueReferrers(obj, match) }
	return cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(old, obj any) {
			if changed != nil && changed(old, obj) {
				enqueue(obj)
			}
		},
		DeleteFunc: enqueue,
	}
}

// referencesMayHaveChanged tells whether a pipeline update can need new conditions: a spec
// change, a change to the conditions themselves, or a resync (the same object again, the safety
// net). The data plane's status reports are none of these.
func referencesMayHaveChanged(old, obj any) bool {
	o, ok1 := old.(*corev1.Pipeline)
	n, ok2 := obj.(*corev1.Pipeline)
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion || o.Generation != n.Generation {
		return true
	}
	for _, t := range []string{ConditionReferencesResolved, corev1.PipelineConditionConfigValid} {
		oc, nc := meta.FindStatusCondition(o.Status.Conditions, t), meta.FindStatusCondition(n.Status.Conditions, t)
		if (oc == nil) != (nc == nil) || oc != nil && (oc.Status != nc.Status || oc.Reason != nc.Reason ||
			oc.Message != nc.Message || oc.ObservedGeneration != nc.ObservedGeneration) {
			return true
		}
	}
	return false
}

func refersToSecret(p *corev1.Pipeline, name string) bool {
	return slices.Contains(p.Spec.Secrets, name)
}

// secretKeysChanged tells whether a pipeline secret's keys changed: pipelines refer to keys,
// never to values.
func secretKeysChanged(old, obj any) bool {
	o, ok1 := old.(*corev1.PipelineSecret)
	n, ok2 := obj.(*corev1.PipelineSecret)
	return !ok1 || !ok2 || !sets.KeySet(o.Data).Equal(sets.KeySet(n.Data))
}

// enqueueReferrers enqueues the pipelines in obj's namespace that refer to it.
func (c *Controller) enqueueReferrers(obj any, refersTo func(p *corev1.Pipeline, name string) bool) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	pipelines, err := c.pipelines.Pipelines(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pipelines {
		if refersTo(p, m.GetName()) {
			c.queue.Add(cache.MetaObjectToName(p))
		}
	}
}

// sync sets the pipeline's conditions from the current state of what it
// refers to, writing status only when a condition changed.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	p, err := c.pipelines.Pipelines(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	r, err := references.Check(ctx, pipelineOf(p), listerLookup{c})
	if err != nil {
		return err
	}
	updated := p.DeepCopy()
	// The API server sets the same conditions when a pipeline is written, so this finds a
	// change only when a referenced object came or went since.
	if !references.Apply(&updated.Status.Conditions, r) {
		return nil
	}
	_, err = c.client.CoreV1().Pipelines(p.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: "cloud-api-pipeline-references"})
	if apierrors.IsNotFound(err) {
		// Deleted meanwhile; the informer will tell.
		return nil
	}
	if err != nil {
		// A conflict means a newer pipeline is on its way through the informer.
		return fmt.Errorf("updating status of pipeline %s: %w", key, err)
	}
	klog.FromContext(ctx).V(2).Info("Updated pipeline reference conditions", "pipeline", key,
		ConditionReferencesResolved, r.References.Status, corev1.PipelineConditionConfigValid, r.Config.Status)
	return nil
}
