package agent

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

// ReasonHeartbeat is the reason of the Reachable=True condition heartbeats set.
const ReasonHeartbeat = "HeartbeatReceived"

// heartbeat tells the management plane the agent is alive: phase Running, the time, what the
// agent runs and how many pipelines it has. cloud-api's liveness worker turns the phase
// Unreachable when heartbeats stop.
func (a *Agent) heartbeat(ctx context.Context) {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		return a.beat(ctx, time.Now())
	})
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Heartbeat failed", "coreInstance", klog.KRef(a.cfg.Namespace, a.cfg.CoreInstance))
	}
}

func (a *Agent) beat(ctx context.Context, now time.Time) error {
	instances := a.cfg.Client.CoreV1().CoreInstances(a.cfg.Namespace)
	// Read fresh: the liveness worker writes this status too, and a stale copy only conflicts.
	ci, err := instances.Get(ctx, a.cfg.CoreInstance, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading core instance: %w", err)
	}
	pipelines, err := a.pipelines.Pipelines(a.cfg.Namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	ci = ci.DeepCopy()
	st := &ci.Status
	st.Phase = v1.CoreInstancePhaseRunning
	st.LastHeartbeatTime = &metav1.Time{Time: now}
	st.ObservedGeneration = ci.Generation
	if a.cfg.Describe != nil {
		info := a.cfg.Describe(ci)
		st.AgentVersion, st.FluentBitVersion, st.Cluster = info.AgentVersion, info.FluentBitVersion, info.Cluster
	}
	st.Pipelines = int32(len(pipelines))
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               v1.CoreInstanceConditionReachable,
		Status:             metav1.ConditionTrue,
		Reason:             ReasonHeartbeat,
		Message:            fmt.Sprintf("The agent reports every %s.", a.cfg.HeartbeatInterval),
		ObservedGeneration: ci.Generation,
	})
	if _, err := instances.UpdateStatus(ctx, ci, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("updating core instance status: %w", err)
	}
	klog.FromContext(ctx).V(4).Info("Heartbeat", "pipelines", st.Pipelines)
	return nil
}
