package references

import (
	"context"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/pkg/fluentbit"
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

// mapLookup holds the objects of one namespace.
type mapLookup struct {
	coreInstances, profiles map[string]bool
	secrets                 map[string][]string
}

func (l mapLookup) CoreInstanceExists(_ context.Context, _, name string) (bool, error) {
	return l.coreInstances[name], nil
}

func (l mapLookup) ResourceProfileExists(_ context.Context, _, name string) (bool, error) {
	return l.profiles[name], nil
}

func (l mapLookup) SecretKeys(_ context.Context, _, name string) ([]string, bool, error) {
	keys, ok := l.secrets[name]
	return keys, ok, nil
}

func TestCheckConfigReferences(t *testing.T) {
	l := mapLookup{coreInstances: map[string]bool{"edge": true}, secrets: map[string][]string{"creds": {"user"}}}
	const (
		plain      = "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name stdout\n    match *\n"
		withRef    = "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name http\n    match *\n    http_user {{ secrets.user }}\n    http_passwd {{ secrets.password }}\n"
		unparsable = "[INPUT\n    name dummy\n"
		badYAML    = "pipeline:\n  inputs: [\n"
	)
	tests := []struct {
		name       string
		config     string
		format     fluentbit.Format
		secrets    []string
		validating bool
		wantParsed bool
		wantStatus metav1.ConditionStatus
		wantInMsg  string
	}{
		{name: "no references", config: plain, format: fluentbit.FormatClassic, wantParsed: true, wantStatus: metav1.ConditionTrue},
		{name: "undefined key", config: withRef, format: fluentbit.FormatClassic, secrets: []string{"creds"}, wantParsed: true, wantStatus: metav1.ConditionFalse, wantInMsg: `secret "password"`},
		{name: "undefined key, validating", config: withRef, format: fluentbit.FormatClassic, secrets: []string{"creds"}, validating: true, wantParsed: true, wantStatus: metav1.ConditionFalse, wantInMsg: `secret "password"`},
		{name: "missing secret without any reference, validating", config: plain, format: fluentbit.FormatClassic, secrets: []string{"gone"}, validating: true, wantParsed: true, wantStatus: metav1.ConditionFalse, wantInMsg: "pipeline secrets not found: gone"},
		// Stored configs that no longer parse are not this check's to report...
		{name: "unparsable stored config", config: unparsable, format: fluentbit.FormatClassic, wantParsed: false},
		{name: "unparsable stored YAML", config: badYAML, format: fluentbit.FormatYAML, wantParsed: false},
		// ...while on a write the API refuses them anyway: a classic config without "{{" is not parsed again.
		{name: "classic without braces, validating", config: unparsable, format: fluentbit.FormatClassic, validating: true, wantParsed: true, wantStatus: metav1.ConditionTrue},
		{name: "YAML is always parsed", config: badYAML, format: fluentbit.FormatYAML, validating: true, wantParsed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Pipeline{Namespace: "ns", Generation: 3, CoreInstance: "edge", ResourceProfile: "best-effort-low-resource", BuiltinProfile: true,
				Secrets: tt.secrets, Config: tt.config, Format: tt.format, Validating: tt.validating}
			r, err := Check(context.Background(), p, l)
			if err != nil {
				t.Fatal(err)
			}
			if r.References.Status != metav1.ConditionTrue || r.References.ObservedGeneration != 3 {
				t.Errorf("ReferencesResolved = %+v, want True at generation 3", r.References)
			}
			if r.Parsed != tt.wantParsed {
				t.Fatalf("parsed = %v, want %v", r.Parsed, tt.wantParsed)
			}
			if !tt.wantParsed {
				return
			}
			if r.Config.Status != tt.wantStatus || !strings.Contains(r.Config.Message, tt.wantInMsg) {
				t.Errorf("ConfigValid = %s %q, want %s containing %q", r.Config.Status, r.Config.Message, tt.wantStatus, tt.wantInMsg)
			}
		})
	}
}
