// Package liveness marks core instances Unreachable when their agent stops
// heartbeating. Agents set Running themselves on every heartbeat (every 30 s);
// only the server can notice that heartbeats stopped, so this controller
// schedules a check for the moment each Running instance's last heartbeat
// turns HeartbeatTimeout old, instead of polling every instance.
package liveness

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	clientset "github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
	listers "github.com/calyptia/core-management-plane/pkg/generated/listers/core/v1"
	"github.com/calyptia/core-management-plane/pkg/registry/core/coreinstance"
)

// ReasonHeartbeatTimeout is the reason of the Reachable=False condition this controller sets.
const ReasonHeartbeatTimeout = "HeartbeatTimeout"

// Controller marks core instances Unreachable.
type Controller struct {
	client        clientset.Interface
	coreInstances listers.CoreInstanceLister
	synced        cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[cache.ObjectName]
}

// NewController registers its informer with factory; start the factory after this.
func NewController(client clientset.Interface, factory informers.SharedInformerFactory) *Controller {
	inf := factory.Core().V1().CoreInstances()
	c := &Controller{
		client:        client,
		coreInstances: inf.Lister(),
		synced:        inf.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "coreinstance-liveness"}),
	}
	enqueue := func(obj any) {
		if ci, ok := obj.(*corev1.CoreInstance); ok {
			c.queue.Add(cache.MetaObjectToName(ci))
		}
	}
	// A handler's registration error only happens on a stopped informer.
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c
}

// Run processes core instances with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting core instance liveness controller")
	defer logger.Info("Stopped core instance liveness controller")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced) {
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
		if !apierrors.IsConflict(err) {
			utilruntime.HandleErrorWithContext(ctx, err, "Checking core instance liveness", "coreInstance", key)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	ci, err := c.coreInstances.CoreInstances(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	expired, recheck := evaluate(ci, now)
	if !expired {
		if recheck > 0 {
			c.queue.AddAfter(key, recheck)
		}
		return nil
	}
	updated := ci.DeepCopy()
	updated.Status.Phase = corev1.CoreInstancePhaseUnreachable
	meta.SetStatusCondition(&updated.Status.Conditions, metav1.Condition{
		Type:               corev1.CoreInstanceConditionReachable,
		Status:             metav1.ConditionFalse,
		Reason:             ReasonHeartbeatTimeout,
		Message:            fmt.Sprintf("No heartbeat since %s (more than %s).", ci.Status.LastHeartbeatTime.UTC().Format(time.RFC3339), coreinstance.HeartbeatTimeout),
		ObservedGeneration: ci.Generation,
		LastTransitionTime: metav1.NewTime(now),
	})
	_, err = c.client.CoreV1().CoreInstances(ci.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: "cloud-api-liveness"})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("marking core instance %s unreachable: %w", key, err)
	}
	klog.FromContext(ctx).Info("Core instance unreachable", "coreInstance", key, "lastHeartbeat", ci.Status.LastHeartbeatTime.Time)
	return nil
}

// evaluate says whether a Running core instance's heartbeat has expired at
// now, and if not, after how long to look again (0: nothing to watch for).
func evaluate(ci *corev1.CoreInstance, now time.Time) (expired bool, recheck time.Duration) {
	if ci.Status.Phase != corev1.CoreInstancePhaseRunning || ci.Status.LastHeartbeatTime == nil {
		return false, 0
	}
	deadline := ci.Status.LastHeartbeatTime.Add(coreinstance.HeartbeatTimeout)
	if now.After(deadline) {
		return true, 0
	}
	// Just past the deadline, so that the check after it finds it expired.
	return false, deadline.Sub(now) + time.Millisecond
}
