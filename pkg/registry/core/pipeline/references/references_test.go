package references

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetConfigValid(t *testing.T) {
	valid := metav1.Condition{Type: "ConfigValid", Status: metav1.ConditionTrue, Reason: ReasonResolved, ObservedGeneration: 2}
	unresolvedCond := metav1.Condition{Type: "ConfigValid", Status: metav1.ConditionFalse, Reason: ReasonUnresolvedReferences, ObservedGeneration: 2}
	tests := []struct {
		name        string
		current     []metav1.Condition
		set         metav1.Condition
		wantChanged bool
		wantReason  string
	}{
		{name: "absent becomes valid", set: valid, wantChanged: true, wantReason: ReasonResolved},
		{name: "absent becomes unresolved", set: unresolvedCond, wantChanged: true, wantReason: ReasonUnresolvedReferences},
		{name: "own false is cleared", current: []metav1.Condition{unresolvedCond}, set: valid, wantChanged: true, wantReason: ReasonResolved},
		{
			name:        "another writer's false is kept",
			current:     []metav1.Condition{{Type: "ConfigValid", Status: metav1.ConditionFalse, Reason: "UnknownPlugin", ObservedGeneration: 2}},
			set:         valid,
			wantChanged: false,
			wantReason:  "UnknownPlugin",
		},
		{
			name:        "another writer's false is overridden by unresolved references",
			current:     []metav1.Condition{{Type: "ConfigValid", Status: metav1.ConditionFalse, Reason: "UnknownPlugin", ObservedGeneration: 2}},
			set:         unresolvedCond,
			wantChanged: true,
			wantReason:  ReasonUnresolvedReferences,
		},
		{name: "unchanged", current: []metav1.Condition{valid}, set: valid, wantChanged: false, wantReason: ReasonResolved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conds := slices.Clone(tt.current)
			if got := SetConfigValid(&conds, tt.set); got != tt.wantChanged {
				t.Errorf("changed = %v, want %v", got, tt.wantChanged)
			}
			if len(conds) != 1 || conds[0].Reason != tt.wantReason {
				t.Errorf("conditions = %+v, want one with reason %s", conds, tt.wantReason)
			}
		})
	}
}
