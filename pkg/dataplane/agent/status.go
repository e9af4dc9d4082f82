package agent

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
)

// Reasons of the Deployed and Available conditions, besides a failure's own reason.
const (
	ReasonRolledOut       = "RolledOut"
	ReasonRollingOut      = "RollingOut"
	ReasonReplicasReady   = "MinimumReplicasAvailable"
	ReasonReplicasWaiting = "ReplicasNotReady"
)

// computeStatus is the pipeline's status after a sync: what the runtime observed (obs, nil when
// it was not asked) or why the pipeline cannot run (failure). Conditions other writers own
// (ConfigValid, ReferencesResolved) are kept as they are.
func computeStatus(p *v1.Pipeline, spec *dataplane.Spec, obs *dataplane.Observation, failure *dataplane.Failure) v1.PipelineStatus {
	st := *p.Status.DeepCopy()
	st.ObservedGeneration = p.Generation
	cond := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: p.Generation,
		})
	}

	if obs == nil {
		// Nothing was applied: what ran before keeps running, and status says why nothing new does.
		st.Phase = v1.PipelinePhaseFailed
		cond(v1.PipelineConditionDeployed, metav1.ConditionFalse, failure.Reason, failure.Message)
		if spec.Rendered != nil {
			st.Ports = spec.Rendered.Ports
		}
		return st
	}

	rev := spec.Rendered.Revision()
	st.Replicas = obs.Replicas
	st.ReadyReplicas = min(obs.ReadyReplicas, obs.Replicas)
	st.Selector = obs.Selector
	st.Ports = obs.Ports
	st.TapEndpoint = obs.TapEndpoint

	rolledOutNow := obs.RolledOut && obs.UpdatedReplicas >= obs.Desired
	// Scaling a revision that already rolled out does not make it less deployed.
	deployed := rolledOutNow || st.ConfigRevision == rev
	wasRunning := p.Status.ConfigRevision == rev &&
		(p.Status.Phase == v1.PipelinePhaseStarted || p.Status.Phase == v1.PipelinePhaseScaling)
	available := obs.ReadyReplicas >= obs.Desired
	settled := available && obs.Replicas == obs.Desired

	old := meta.FindStatusCondition(p.Status.Conditions, v1.PipelineConditionDeployed)
	switch {
	case deployed && !rolledOutNow && old != nil && old.Status == metav1.ConditionTrue:
		// Scaling or restarting pods of a revision that rolled out: it stays deployed as it was.
		cond(v1.PipelineConditionDeployed, metav1.ConditionTrue, old.Reason, old.Message)
	case deployed:
		st.ConfigRevision = rev
		how := ""
		if spec.Rendered.HotReload {
			how = ", reloaded in place"
		}
		cond(v1.PipelineConditionDeployed, metav1.ConditionTrue, ReasonRolledOut,
			fmt.Sprintf("Config revision %s applied to %d of %d replicas%s.", rev, obs.UpdatedReplicas, obs.Desired, how))
	default:
		cond(v1.PipelineConditionDeployed, metav1.ConditionFalse, ReasonRollingOut,
			fmt.Sprintf("Rolling out config revision %s: %d of %d replicas updated.", rev, obs.UpdatedReplicas, obs.Desired))
	}

	switch {
	case failure != nil:
		cond(v1.PipelineConditionAvailable, metav1.ConditionFalse, failure.Reason, failure.Message)
	case available:
		cond(v1.PipelineConditionAvailable, metav1.ConditionTrue, ReasonReplicasReady,
			fmt.Sprintf("%d of %d replicas ready.", obs.ReadyReplicas, obs.Desired))
	default:
		msg := fmt.Sprintf("%d of %d replicas ready.", obs.ReadyReplicas, obs.Desired)
		if obs.Waiting != "" {
			msg += " " + upperFirst(obs.Waiting) + "."
		}
		cond(v1.PipelineConditionAvailable, metav1.ConditionFalse, ReasonReplicasWaiting, msg)
	}

	switch {
	case failure != nil:
		st.Phase = v1.PipelinePhaseFailed
	case deployed && settled:
		st.Phase = v1.PipelinePhaseStarted
	case wasRunning:
		st.Phase = v1.PipelinePhaseScaling
	default:
		st.Phase = v1.PipelinePhaseStarting
	}
	return st
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// transitions tells the story of a status change in Events on the pipeline: each revision's
// rollout and its end, failures as they start or change, and scaling.
func transitions(p *v1.Pipeline, st *v1.PipelineStatus, spec *dataplane.Spec, obs *dataplane.Observation, failure *dataplane.Failure) []dataplane.Event {
	var out []dataplane.Event
	oldDeployed := meta.FindStatusCondition(p.Status.Conditions, v1.PipelineConditionDeployed)
	newDeployed := meta.FindStatusCondition(st.Conditions, v1.PipelineConditionDeployed)
	if obs != nil {
		rev := spec.Rendered.Revision()
		switch {
		case newDeployed.Status == metav1.ConditionTrue &&
			(oldDeployed == nil || oldDeployed.Status != metav1.ConditionTrue || p.Status.ConfigRevision != rev):
			out = append(out, dataplane.Event{Type: corev1.EventTypeNormal, Reason: "Deployed", Message: newDeployed.Message})
		case newDeployed.Reason == ReasonRollingOut &&
			(oldDeployed == nil || oldDeployed.Reason != ReasonRollingOut || !strings.Contains(oldDeployed.Message, rev)):
			out = append(out, dataplane.Event{Type: corev1.EventTypeNormal, Reason: "RollingOut",
				Message: fmt.Sprintf("Rolling out config revision %s to %d replicas.", rev, obs.Desired)})
		}
		if st.Phase == v1.PipelinePhaseScaling && p.Status.Phase != v1.PipelinePhaseScaling {
			out = append(out, dataplane.Event{Type: corev1.EventTypeNormal, Reason: "Scaling",
				Message: fmt.Sprintf("Scaling from %d to %d replicas.", p.Status.Replicas, obs.Desired)})
		}
	}
	if failure != nil {
		// The condition that carries the failure: Available when something runs, else Deployed.
		typ := v1.PipelineConditionDeployed
		if obs != nil {
			typ = v1.PipelineConditionAvailable
		}
		old := meta.FindStatusCondition(p.Status.Conditions, typ)
		if p.Status.Phase != v1.PipelinePhaseFailed || old == nil || old.Reason != failure.Reason || old.Message != failure.Message {
			out = append(out, dataplane.Event{Type: corev1.EventTypeWarning, Reason: failure.Reason, Message: failure.Message})
		}
	}
	return out
}
