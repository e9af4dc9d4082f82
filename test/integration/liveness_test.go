package integration

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/controller/liveness"
)

// TestCoreInstanceLiveness reports a heartbeat older than the timeout, as an
// agent that then died would have, and expects the server to mark the core
// instance Unreachable.
func TestCoreInstanceLiveness(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	c := env.client.CoreV1().CoreInstances(ns)
	ci, err := c.Create(ctx, &calyptiav1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "silent"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// metav1.Time keeps whole seconds.
	last := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	ci.Status.Phase = calyptiav1.CoreInstancePhaseRunning
	ci.Status.LastHeartbeatTime = &last
	if _, err := c.UpdateStatus(ctx, ci, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("reporting a heartbeat: %v", err)
	}

	var got *calyptiav1.CoreInstance
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err = c.Get(ctx, "silent", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, calyptiav1.CoreInstanceConditionReachable)
		return got.Status.Phase == calyptiav1.CoreInstancePhaseUnreachable &&
			cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == liveness.ReasonHeartbeatTimeout, nil
	})
	if err != nil {
		t.Fatalf("core instance not marked unreachable: %v; status %+v", err, got.Status)
	}
	if !got.Status.LastHeartbeatTime.Equal(&last) {
		t.Errorf("lastHeartbeatTime changed to %v", got.Status.LastHeartbeatTime)
	}
}
