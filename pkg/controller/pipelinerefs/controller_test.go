package pipelinerefs

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned/fake"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
)

// TestEventsThatRecheck drives the controller's event handlers with the events of a busy plane
// and checks which of them queue the pipeline for a new check.
func TestEventsThatRecheck(t *testing.T) {
	meta := func(name, rv string, generation int64) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "team-a", Name: name, ResourceVersion: rv, Generation: generation}
	}
	pipeline := &corev1.Pipeline{
		ObjectMeta: meta("p", "10", 1),
		Spec:       corev1.PipelineSpec{CoreInstance: "edge", ResourceProfile: "tuned", Secrets: []string{"creds"}},
		Status: corev1.PipelineStatus{Conditions: []metav1.Condition{
			{Type: ConditionReferencesResolved, Status: metav1.ConditionTrue, Reason: ReasonResolved, ObservedGeneration: 1},
		}},
	}
	withStatus := func(rv string, edit func(*corev1.PipelineStatus)) *corev1.Pipeline {
		p := pipeline.DeepCopy()
		p.ResourceVersion = rv
		edit(&p.Status)
		return p
	}
	respecced := pipeline.DeepCopy()
	respecced.ResourceVersion, respecced.Generation = "11", 2

	instance := &corev1.CoreInstance{ObjectMeta: meta("edge", "20", 1)}
	heartbeat := instance.DeepCopy()
	heartbeat.ResourceVersion = "21"
	now := metav1.Now()
	heartbeat.Status.LastHeartbeatTime = &now
	otherInstance := &corev1.CoreInstance{ObjectMeta: meta("other", "22", 1)}
	profile := &corev1.ResourceProfile{ObjectMeta: meta("tuned", "30", 1)}
	relabelled := profile.DeepCopy()
	relabelled.ResourceVersion, relabelled.Labels = "31", map[string]string{"a": "b"}

	secret := &corev1.PipelineSecret{ObjectMeta: meta("creds", "40", 1), Data: map[string][]byte{"user": []byte("u")}}
	newValue := secret.DeepCopy()
	newValue.ResourceVersion, newValue.Data = "41", map[string][]byte{"user": []byte("v")}
	newKey := secret.DeepCopy()
	newKey.ResourceVersion, newKey.Data = "42", map[string][]byte{"user": []byte("u"), "password": []byte("p")}
	renamedKey := secret.DeepCopy()
	renamedKey.ResourceVersion, renamedKey.Data = "43", map[string][]byte{"login": []byte("u")}

	tests := []struct {
		name string
		send func(h handlers)
		want bool
	}{
		{"pipeline added", func(h handlers) { h.pipelines.OnAdd(pipeline, false) }, true},
		{"pipeline spec changed", func(h handlers) { h.pipelines.OnUpdate(pipeline, respecced) }, true},
		{"pipeline resync", func(h handlers) { h.pipelines.OnUpdate(pipeline, pipeline) }, true},
		{"data plane status report", func(h handlers) {
			h.pipelines.OnUpdate(pipeline, withStatus("12", func(s *corev1.PipelineStatus) { s.Phase = corev1.PipelinePhaseStarted; s.ReadyReplicas = 1 }))
		}, false},
		{"references condition overwritten", func(h handlers) {
			h.pipelines.OnUpdate(pipeline, withStatus("13", func(s *corev1.PipelineStatus) { s.Conditions = nil }))
		}, true},
		{"core instance created", func(h handlers) { h.coreInstances.OnAdd(instance, false) }, true},
		{"core instance heartbeat", func(h handlers) { h.coreInstances.OnUpdate(instance, heartbeat) }, false},
		{"core instance deleted", func(h handlers) { h.coreInstances.OnDelete(instance) }, true},
		{"core instance deleted, final state unknown", func(h handlers) {
			h.coreInstances.OnDelete(cache.DeletedFinalStateUnknown{Key: "team-a/edge", Obj: instance})
		}, true},
		{"another core instance created", func(h handlers) { h.coreInstances.OnAdd(otherInstance, false) }, false},
		{"profile created", func(h handlers) { h.profiles.OnAdd(profile, false) }, true},
		{"profile relabelled", func(h handlers) { h.profiles.OnUpdate(profile, relabelled) }, false},
		{"profile deleted", func(h handlers) { h.profiles.OnDelete(profile) }, true},
		{"secret created", func(h handlers) { h.secrets.OnAdd(secret, false) }, true},
		{"secret value changed", func(h handlers) { h.secrets.OnUpdate(secret, newValue) }, false},
		{"secret key added", func(h handlers) { h.secrets.OnUpdate(secret, newKey) }, true},
		{"secret key renamed", func(h handlers) { h.secrets.OnUpdate(secret, renamedKey) }, true},
		{"secret deleted", func(h handlers) { h.secrets.OnDelete(secret) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			factory := informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
			c := NewController(fake.NewSimpleClientset(), factory)
			defer c.queue.ShutDown()
			if err := factory.Core().V1().Pipelines().Informer().GetIndexer().Add(pipeline); err != nil {
				t.Fatal(err)
			}
			tt.send(c.eventHandlers())
			if got := c.queue.Len() == 1; got != tt.want {
				t.Errorf("pipeline queued = %v (queue length %d), want %v", got, c.queue.Len(), tt.want)
			}
		})
	}
}
