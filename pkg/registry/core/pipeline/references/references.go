// Package references tells whether the objects a pipeline refers to exist: its core instance
// and resource profile (the ReferencesResolved condition) and the pipeline secret keys and files
// its config references (ConfigValid). The API server sets both conditions when a pipeline is
// written, so a new or changed pipeline needs no second write; the pipelinerefs controller keeps
// them current as the referenced objects come and go. Both use this package, so they agree.
package references

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/pkg/fluentbit"
)

// ConditionReferencesResolved is True when the pipeline's core instance and resource profile
// exist. (Secret and file references are part of ConfigValid.)
const ConditionReferencesResolved = "ReferencesResolved"

// ConditionConfigValid is the pipeline condition about its config (the same as
// v1.PipelineConditionConfigValid).
const ConditionConfigValid = "ConfigValid"

// Reasons of the conditions this package sets.
const (
	ReasonResolved             = "Resolved"
	ReasonCoreInstanceNotFound = "CoreInstanceNotFound"
	ReasonProfileNotFound      = "ResourceProfileNotFound"
	ReasonUnresolvedReferences = "UnresolvedReferences"
)

// Pipeline is what the checks read of a pipeline, from the internal or the v1 type.
type Pipeline struct {
	Namespace    string
	Generation   int64
	CoreInstance string
	// ResourceProfile is the profile the pipeline runs with, the default applied.
	ResourceProfile string
	// BuiltinProfile is true when ResourceProfile is a built-in one, which always exists.
	BuiltinProfile bool
	Secrets        []string
	Files          []string
	Config         string
	Format         fluentbit.Format
	// Validating is true when the API server validates this config on the same write (its
	// create and update strategies): a config that does not parse is refused there, so a
	// classic config without "{{" anywhere, which can hold no reference, is not parsed again.
	Validating bool
}

// Lookup finds what pipelines refer to. A missing object is (false, nil), not an error.
type Lookup interface {
	CoreInstanceExists(ctx context.Context, namespace, name string) (bool, error)
	ResourceProfileExists(ctx context.Context, namespace, name string) (bool, error)
	// SecretKeys returns the keys of a pipeline secret.
	SecretKeys(ctx context.Context, namespace, name string) (keys []string, found bool, err error)
}

// Result is both conditions of one pipeline.
type Result struct {
	References metav1.Condition
	// Config is the ConfigValid condition as far as references go; meaningless unless Parsed.
	Config metav1.Condition
	// Parsed is false when the config does not parse: the API refuses such configs on write,
	// so that only happens after a schema change, and is not for this package to report.
	Parsed bool
}

// Check looks up everything p refers to.
func Check(ctx context.Context, p Pipeline, l Lookup) (Result, error) {
	refs, err := checkReferences(ctx, p, l)
	if err != nil {
		return Result{}, err
	}
	cfg, parsed, err := checkConfigReferences(ctx, p, l)
	if err != nil {
		return Result{}, err
	}
	return Result{References: refs, Config: cfg, Parsed: parsed}, nil
}

// Apply sets the conditions of r in conditions and reports whether anything changed.
func Apply(conditions *[]metav1.Condition, r Result) bool {
	changed := meta.SetStatusCondition(conditions, r.References)
	if r.Parsed {
		// ConfigValid also covers syntax and plugins, which the API validates on write; this
		// package only turns it False for unresolved references, and back to True once they
		// resolve.
		changed = SetConfigValid(conditions, r.Config) || changed
	}
	return changed
}

func checkReferences(ctx context.Context, p Pipeline, l Lookup) (metav1.Condition, error) {
	cond := metav1.Condition{
		Type:               ConditionReferencesResolved,
		Status:             metav1.ConditionTrue,
		Reason:             ReasonResolved,
		Message:            "The core instance and the resource profile exist.",
		ObservedGeneration: p.Generation,
	}
	var missing []string
	ok, err := l.CoreInstanceExists(ctx, p.Namespace, p.CoreInstance)
	if err != nil {
		return cond, err
	}
	if !ok {
		cond.Reason = ReasonCoreInstanceNotFound
		missing = append(missing, fmt.Sprintf("core instance %q", p.CoreInstance))
	}
	if !p.BuiltinProfile {
		ok, err := l.ResourceProfileExists(ctx, p.Namespace, p.ResourceProfile)
		if err != nil {
			return cond, err
		}
		if !ok {
			if len(missing) == 0 {
				cond.Reason = ReasonProfileNotFound
			}
			missing = append(missing, fmt.Sprintf("resource profile %q", p.ResourceProfile))
		}
	}
	if len(missing) > 0 {
		cond.Status = metav1.ConditionFalse
		cond.Message = fmt.Sprintf("Not found in namespace %s: %s.", p.Namespace, strings.Join(missing, ", "))
	}
	return cond, nil
}

// checkConfigReferences returns the ConfigValid condition as far as the config's
// {{ secrets.KEY }} and {{ files.NAME }} references go.
func checkConfigReferences(ctx context.Context, p Pipeline, l Lookup) (cond metav1.Condition, ok bool, err error) {
	cond = metav1.Condition{
		Type:               ConditionConfigValid,
		Status:             metav1.ConditionTrue,
		Reason:             ReasonResolved,
		Message:            "Every secret and file the config references is defined.",
		ObservedGeneration: p.Generation,
	}
	// A classic config's values are pieces of its lines: without "{{" there is no reference,
	// and cfg stays nil. (YAML escapes could spell one, so YAML is always parsed.)
	var cfg *fluentbit.Config
	if !p.Validating || p.Format != fluentbit.FormatClassic || strings.Contains(p.Config, "{{") {
		if cfg, err = fluentbit.Parse([]byte(p.Config), p.Format); err != nil {
			return cond, false, nil
		}
	}
	keys := map[string]bool{}
	var missingSecrets []string
	for _, name := range p.Secrets {
		ks, found, err := l.SecretKeys(ctx, p.Namespace, name)
		if err != nil {
			return cond, false, err
		}
		if !found {
			missingSecrets = append(missingSecrets, name)
			continue
		}
		for _, k := range ks {
			keys[k] = true
		}
	}
	files := map[string]bool{}
	for _, f := range p.Files {
		files[f] = true
	}

	var problems []string
	if cfg != nil {
		// Messages name keys and lines only, never values.
		for _, e := range cfg.CheckReferences(func(r fluentbit.Reference) bool {
			if r.Kind == "files" {
				return files[r.Name]
			}
			return keys[r.Name]
		}) {
			problems = append(problems, e.Error())
		}
	}
	if len(missingSecrets) > 0 {
		problems = append(problems, "pipeline secrets not found: "+strings.Join(missingSecrets, ", "))
	} else if len(problems) > 0 && len(p.Secrets) == 0 {
		problems = append(problems, "spec.secrets names no pipeline secrets")
	}
	if len(problems) > 0 {
		cond.Status = metav1.ConditionFalse
		cond.Reason = ReasonUnresolvedReferences
		cond.Message = strings.Join(problems, "; ")
	}
	return cond, true, nil
}

// SetConfigValid applies this package's view of ConfigValid: False when references are
// unresolved; True when they resolve, unless another writer (API validation, the data plane)
// holds it False for its own reason.
func SetConfigValid(conditions *[]metav1.Condition, cond metav1.Condition) bool {
	if cond.Status == metav1.ConditionTrue {
		if cur := meta.FindStatusCondition(*conditions, cond.Type); cur != nil &&
			cur.Status == metav1.ConditionFalse && cur.Reason != ReasonUnresolvedReferences {
			return false
		}
	}
	return meta.SetStatusCondition(conditions, cond)
}
