package pipelinerefs

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
)

// Reasons of the conditions this controller sets.
const (
	ReasonResolved             = "Resolved"
	ReasonCoreInstanceNotFound = "CoreInstanceNotFound"
	ReasonProfileNotFound      = "ResourceProfileNotFound"
	ReasonUnresolvedReferences = "UnresolvedReferences"
)

// checkReferences returns the ReferencesResolved condition of p.
func (c *Controller) checkReferences(p *corev1.Pipeline) (metav1.Condition, error) {
	cond := metav1.Condition{
		Type:               ConditionReferencesResolved,
		Status:             metav1.ConditionTrue,
		Reason:             ReasonResolved,
		Message:            "The core instance and the resource profile exist.",
		ObservedGeneration: p.Generation,
	}
	var missing []string
	_, err := c.coreInstances.CoreInstances(p.Namespace).Get(p.Spec.CoreInstance)
	switch {
	case apierrors.IsNotFound(err):
		cond.Reason = ReasonCoreInstanceNotFound
		missing = append(missing, fmt.Sprintf("core instance %q", p.Spec.CoreInstance))
	case err != nil:
		return cond, err
	}
	if profile := corev1.PipelineResourceProfile(&p.Spec); !corev1.IsBuiltinResourceProfile(profile) {
		_, err := c.profiles.ResourceProfiles(p.Namespace).Get(profile)
		switch {
		case apierrors.IsNotFound(err):
			if len(missing) == 0 {
				cond.Reason = ReasonProfileNotFound
			}
			missing = append(missing, fmt.Sprintf("resource profile %q", profile))
		case err != nil:
			return cond, err
		}
	}
	if len(missing) > 0 {
		cond.Status = metav1.ConditionFalse
		cond.Message = fmt.Sprintf("Not found in namespace %s: %s.", p.Namespace, strings.Join(missing, ", "))
	}
	return cond, nil
}

// checkConfigReferences returns the ConfigValid condition as far as the
// config's {{ secrets.KEY }} and {{ files.NAME }} references go. ok is false
// when the config does not parse: the API refuses such configs on write, so
// that only happens after a schema change, and is not this controller's to report.
func (c *Controller) checkConfigReferences(p *corev1.Pipeline) (cond metav1.Condition, ok bool, err error) {
	cond = metav1.Condition{
		Type:               corev1.PipelineConditionConfigValid,
		Status:             metav1.ConditionTrue,
		Reason:             ReasonResolved,
		Message:            "Every secret and file the config references is defined.",
		ObservedGeneration: p.Generation,
	}
	cfg, err := fluentbit.Parse([]byte(p.Spec.Config), fluentbit.Format(corev1.PipelineConfigFormat(&p.Spec)))
	if err != nil {
		return cond, false, nil
	}
	keys := map[string]bool{}
	var missingSecrets []string
	for _, name := range p.Spec.Secrets {
		s, err := c.secrets.PipelineSecrets(p.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			missingSecrets = append(missingSecrets, name)
			continue
		}
		if err != nil {
			return cond, false, err
		}
		for k := range s.Data {
			keys[k] = true
		}
	}
	files := map[string]bool{}
	for _, f := range p.Spec.Files {
		files[f.Name] = true
	}

	var problems []string
	// Messages name keys and lines only, never values.
	for _, e := range cfg.CheckReferences(func(r fluentbit.Reference) bool {
		if r.Kind == "files" {
			return files[r.Name]
		}
		return keys[r.Name]
	}) {
		problems = append(problems, e.Error())
	}
	if len(missingSecrets) > 0 {
		problems = append(problems, "pipeline secrets not found: "+strings.Join(missingSecrets, ", "))
	} else if len(problems) > 0 && len(p.Spec.Secrets) == 0 {
		problems = append(problems, "spec.secrets names no pipeline secrets")
	}
	if len(problems) > 0 {
		cond.Status = metav1.ConditionFalse
		cond.Reason = ReasonUnresolvedReferences
		cond.Message = strings.Join(problems, "; ")
	}
	return cond, true, nil
}

// setConfigValid applies this controller's view of ConfigValid: False when
// references are unresolved; True when they resolve, unless another writer
// (API validation, the data plane) holds it False for its own reason.
func setConfigValid(conditions *[]metav1.Condition, cond metav1.Condition) bool {
	if cond.Status == metav1.ConditionTrue {
		if cur := meta.FindStatusCondition(*conditions, cond.Type); cur != nil &&
			cur.Status == metav1.ConditionFalse && cur.Reason != ReasonUnresolvedReferences {
			return false
		}
	}
	return meta.SetStatusCondition(conditions, cond)
}
