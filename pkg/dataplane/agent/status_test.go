package agent

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

func TestComputeStatus(t *testing.T) {
	rendered := &render.Pipeline{ConfigRevision: "c1", SecretsRevision: "s1", Ports: []v1.PipelinePortStatus{{Port: 24224, Protocol: "TCP", ServicePort: 24224}}}
	rev := rendered.Revision()
	spec := &dataplane.Spec{Rendered: rendered}
	started := v1.PipelineStatus{Phase: v1.PipelinePhaseStarted, ConfigRevision: rev, Replicas: 2, ReadyReplicas: 2,
		Conditions: []metav1.Condition{{Type: v1.PipelineConditionDeployed, Status: metav1.ConditionTrue, Reason: ReasonRolledOut, Message: "Config revision " + rev}}}
	refs := metav1.Condition{Type: "ReferencesResolved", Status: metav1.ConditionTrue, Reason: "Resolved"}

	tests := []struct {
		name          string
		old           v1.PipelineStatus
		obs           *dataplane.Observation
		failure       *dataplane.Failure
		phase         v1.PipelinePhase
		deployed      metav1.ConditionStatus
		deployedWhy   string
		available     metav1.ConditionStatus
		availableWhy  string
		revision      string
		wantEvents    []string
		messageSubstr string
	}{
		{
			name:     "first rollout under way",
			old:      v1.PipelineStatus{Phase: v1.PipelinePhaseNew, Conditions: []metav1.Condition{refs}},
			obs:      &dataplane.Observation{Desired: 2, Replicas: 2, UpdatedReplicas: 1},
			phase:    v1.PipelinePhaseStarting,
			deployed: metav1.ConditionFalse, deployedWhy: ReasonRollingOut,
			available: metav1.ConditionFalse, availableWhy: ReasonReplicasWaiting,
			wantEvents: []string{"RollingOut"},
		},
		{
			name:     "rolled out, pods not ready yet",
			old:      v1.PipelineStatus{Phase: v1.PipelinePhaseStarting},
			obs:      &dataplane.Observation{Desired: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, RolledOut: true, Waiting: "pod x cannot be scheduled: no nodes"},
			phase:    v1.PipelinePhaseStarting,
			deployed: metav1.ConditionTrue, deployedWhy: ReasonRolledOut,
			available: metav1.ConditionFalse, availableWhy: ReasonReplicasWaiting,
			revision:      rev,
			wantEvents:    []string{"Deployed"},
			messageSubstr: "Pod x cannot be scheduled",
		},
		{
			name:     "started",
			old:      v1.PipelineStatus{Phase: v1.PipelinePhaseStarting, ConfigRevision: rev},
			obs:      &dataplane.Observation{Desired: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, RolledOut: true},
			phase:    v1.PipelinePhaseStarted,
			deployed: metav1.ConditionTrue, deployedWhy: ReasonRolledOut,
			available: metav1.ConditionTrue, availableWhy: ReasonReplicasReady,
			revision:   rev,
			wantEvents: []string{"Deployed"},
		},
		{
			name:     "scaling up the same revision",
			old:      started,
			obs:      &dataplane.Observation{Desired: 4, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, RolledOut: true},
			phase:    v1.PipelinePhaseScaling,
			deployed: metav1.ConditionTrue, deployedWhy: ReasonRolledOut,
			available: metav1.ConditionFalse, availableWhy: ReasonReplicasWaiting,
			revision:   rev,
			wantEvents: []string{"Scaling"},
		},
		{
			name:     "scaled to zero",
			old:      started,
			obs:      &dataplane.Observation{Desired: 0, RolledOut: true},
			phase:    v1.PipelinePhaseStarted,
			deployed: metav1.ConditionTrue, deployedWhy: ReasonRolledOut,
			available: metav1.ConditionTrue, availableWhy: ReasonReplicasReady,
			revision: rev,
		},
		{
			name:     "a new revision after a running one",
			old:      v1.PipelineStatus{Phase: v1.PipelinePhaseStarted, ConfigRevision: "older"},
			obs:      &dataplane.Observation{Desired: 2, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2},
			phase:    v1.PipelinePhaseStarting,
			deployed: metav1.ConditionFalse, deployedWhy: ReasonRollingOut,
			available: metav1.ConditionTrue, availableWhy: ReasonReplicasReady,
			revision:   "older",
			wantEvents: []string{"RollingOut"},
		},
		{
			name:     "crash loop while running",
			old:      started,
			obs:      &dataplane.Observation{Desired: 2, Replicas: 2, UpdatedReplicas: 2, RolledOut: true},
			failure:  &dataplane.Failure{Reason: "CrashLoopBackOff", Message: "pod a: container fluent-bit: CrashLoopBackOff"},
			phase:    v1.PipelinePhaseFailed,
			deployed: metav1.ConditionTrue, deployedWhy: ReasonRolledOut,
			available: metav1.ConditionFalse, availableWhy: "CrashLoopBackOff",
			revision:   rev,
			wantEvents: []string{"CrashLoopBackOff"},
		},
		{
			name:     "render failure leaves what runs alone",
			old:      started,
			failure:  &dataplane.Failure{Reason: "SecretNotFound", Message: "undefined pipeline secrets: key"},
			phase:    v1.PipelinePhaseFailed,
			deployed: metav1.ConditionFalse, deployedWhy: "SecretNotFound",
			revision:   rev,
			wantEvents: []string{"SecretNotFound"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &v1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 3}, Status: *tt.old.DeepCopy()}
			st := computeStatus(p, spec, tt.obs, tt.failure)
			if st.Phase != tt.phase {
				t.Errorf("phase %s, want %s", st.Phase, tt.phase)
			}
			if st.ObservedGeneration != 3 || st.ConfigRevision != tt.revision {
				t.Errorf("observedGeneration %d, configRevision %q (want 3, %q)", st.ObservedGeneration, st.ConfigRevision, tt.revision)
			}
			check := func(typ string, status metav1.ConditionStatus, reason string) {
				c := meta.FindStatusCondition(st.Conditions, typ)
				if status == "" {
					return
				}
				if c == nil || c.Status != status || c.Reason != reason || c.ObservedGeneration != 3 {
					t.Errorf("%s = %+v, want %s/%s", typ, c, status, reason)
				}
			}
			check(v1.PipelineConditionDeployed, tt.deployed, tt.deployedWhy)
			check(v1.PipelineConditionAvailable, tt.available, tt.availableWhy)
			for _, c := range tt.old.Conditions {
				if c.Type == "ReferencesResolved" && meta.FindStatusCondition(st.Conditions, c.Type) == nil {
					t.Error("another writer's condition was dropped")
				}
			}
			if tt.messageSubstr != "" {
				if c := meta.FindStatusCondition(st.Conditions, v1.PipelineConditionAvailable); !strings.Contains(c.Message, tt.messageSubstr) {
					t.Errorf("Available message %q lacks %q", c.Message, tt.messageSubstr)
				}
			}
			if st.ReadyReplicas > st.Replicas {
				t.Errorf("readyReplicas %d > replicas %d", st.ReadyReplicas, st.Replicas)
			}
			var got []string
			for _, e := range transitions(p, &st, spec, tt.obs, tt.failure) {
				got = append(got, e.Reason)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantEvents, ",") {
				t.Errorf("events %v, want %v", got, tt.wantEvents)
			}
			// Nothing new to tell the second time round.
			again := &v1.Pipeline{ObjectMeta: p.ObjectMeta, Status: st}
			st2 := computeStatus(again, spec, tt.obs, tt.failure)
			if evs := transitions(again, &st2, spec, tt.obs, tt.failure); len(evs) > 0 {
				t.Errorf("a repeated sync tells again: %+v", evs)
			}
		})
	}
}
