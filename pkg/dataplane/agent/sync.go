package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

// How soon to look again at a pipeline whose removal is under way, or that failed for a reason
// no watched object will announce the end of (e.g. a workload the target cluster refused).
const (
	removalRecheck = 5 * time.Second
	failureRecheck = 30 * time.Second
)

// sync brings what runs pipeline key in line with the pipeline and reports back. retryAfter
// asks for another look later without counting as an error.
func (a *Agent) sync(ctx context.Context, key dataplane.Key) (retryAfter time.Duration, err error) {
	p, err := a.pipelines.Pipelines(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return a.release(ctx, key)
	}
	if err != nil {
		return 0, err
	}
	if p.DeletionTimestamp != nil {
		return a.remove(ctx, p)
	}
	ci, err := a.instances.CoreInstances(a.cfg.Namespace).Get(a.cfg.CoreInstance)
	if apierrors.IsNotFound(err) {
		// Without its core instance the agent has nothing to run pipelines on; the informer
		// brings every pipeline back if it is created again.
		klog.FromContext(ctx).V(2).Info("Core instance not found; not running pipeline", "pipeline", key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}

	spec, failure := a.prepare(ctx, p, ci)
	var obs *dataplane.Observation
	if failure == nil {
		obs, err = a.cfg.Runtime.Apply(ctx, spec)
		switch {
		case err != nil && permanent(err):
			failure = &dataplane.Failure{Reason: "ApplyFailed", Message: err.Error()}
		case err != nil:
			return 0, err
		case obs.Failure != nil:
			failure = obs.Failure
		}
	}

	if obs != nil {
		// What the runtime saw happen is told once, whatever becomes of the status write.
		for _, e := range obs.Events {
			a.recorder.Event(p, e.Type, e.Reason, e.Message)
		}
	}
	status := computeStatus(p, spec, obs, failure)
	if !apiequality.Semantic.DeepEqual(status, p.Status) || !a.hasFinalizer(p) {
		updated := p.DeepCopy()
		updated.Status = status
		// The finalizer rides on the first status write (through the status subresource: the
		// data-plane role may write status, not specs). Were the pipeline deleted before it
		// lands, the informer's delete still brings the pipeline here to be taken down.
		if !a.hasFinalizer(p) {
			updated.Finalizers = append(updated.Finalizers, a.finalizer())
		}
		// The write carries the resource version the transition was computed from: when the
		// informer's copy was stale it conflicts, so a transition is told only once.
		if _, err := a.cfg.Client.CoreV1().Pipelines(p.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			if apierrors.IsNotFound(err) {
				return 0, nil
			}
			return 0, fmt.Errorf("updating status of pipeline %s: %w", key, err)
		}
		for _, e := range transitions(p, &status, spec, obs, failure) {
			a.recorder.Event(p, e.Type, e.Reason, e.Message)
		}
		klog.FromContext(ctx).V(2).Info("Pipeline status", "pipeline", key, "phase", status.Phase,
			"replicas", status.Replicas, "ready", status.ReadyReplicas, "revision", status.ConfigRevision)
	}
	if failure != nil && (obs == nil || failure.Reason == "ApplyFailed") {
		return failureRecheck, nil
	}
	return 0, nil
}

// permanent tells errors that retrying the same request cannot fix.
func permanent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsNotFound(err)
}

// prepare gathers the pipeline's profile and secrets and renders it for the runtime.
func (a *Agent) prepare(ctx context.Context, p *v1.Pipeline, ci *v1.CoreInstance) (*dataplane.Spec, *dataplane.Failure) {
	spec := &dataplane.Spec{Pipeline: p, Instance: ci}
	profile, err := a.profile(ctx, p.Namespace, v1.PipelineResourceProfile(&p.Spec))
	if err != nil {
		return spec, &dataplane.Failure{Reason: "ResourceProfileNotFound", Message: err.Error()}
	}
	spec.Profile = profile
	var secrets []*v1.PipelineSecret
	var missing []string
	for _, name := range p.Spec.Secrets {
		s, err := a.secrets.PipelineSecrets(p.Namespace).Get(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		secrets = append(secrets, s)
	}
	opts, err := a.cfg.Runtime.RenderOptions(p)
	if err != nil {
		return spec, &dataplane.Failure{Reason: "RenderFailed", Message: err.Error()}
	}
	spec.Rendered, err = render.Render(p, profile, secrets, opts)
	var missingKeys *render.MissingSecretsError
	switch {
	case errors.As(err, &missingKeys):
		msg := err.Error()
		if len(missing) > 0 {
			msg += fmt.Sprintf(" (pipeline secrets not found: %s)", strings.Join(missing, ", "))
		}
		return spec, &dataplane.Failure{Reason: "SecretNotFound", Message: msg}
	case err != nil:
		return spec, &dataplane.Failure{Reason: "RenderFailed", Message: err.Error()}
	}
	return spec, nil
}

// profile returns a resource profile's settings: the namespace's own from the informer, a
// built-in one (served by name, never listed) from the API once, as they cannot change.
func (a *Agent) profile(ctx context.Context, namespace, name string) (*v1.ResourceProfileSpec, error) {
	if rp, err := a.profiles.ResourceProfiles(namespace).Get(name); err == nil {
		return &rp.Spec, nil
	}
	if !v1.IsBuiltinResourceProfile(name) {
		return nil, fmt.Errorf("resource profile %q not found in namespace %s", name, namespace)
	}
	a.builtinMu.Lock()
	defer a.builtinMu.Unlock()
	if spec, ok := a.builtin[name]; ok {
		return spec, nil
	}
	rp, err := a.cfg.Client.CoreV1().ResourceProfiles(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading built-in resource profile %q: %w", name, err)
	}
	a.builtin[name] = &rp.Spec
	return &rp.Spec, nil
}

// remove takes down a deleted pipeline, then lets it go.
func (a *Agent) remove(ctx context.Context, p *v1.Pipeline) (time.Duration, error) {
	key := dataplane.Key{Namespace: p.Namespace, Name: p.Name}
	done, err := a.cfg.Runtime.Remove(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("removing pipeline %s: %w", key, err)
	}
	if !done {
		return removalRecheck, nil
	}
	if !a.hasFinalizer(p) {
		return 0, nil
	}
	a.recorder.Event(p, corev1.EventTypeNormal, "Removed", "Stopped the pipeline and removed what ran it")
	return 0, a.dropFinalizer(ctx, p)
}

// release takes down a pipeline the agent no longer sees: deleted, or moved to another core
// instance, in which case it still carries this agent's finalizer.
func (a *Agent) release(ctx context.Context, key dataplane.Key) (time.Duration, error) {
	done, err := a.cfg.Runtime.Remove(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("removing pipeline %s: %w", key, err)
	}
	if !done {
		return removalRecheck, nil
	}
	p, err := a.cfg.Client.CoreV1().Pipelines(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading pipeline %s: %w", key, err)
	}
	if p.Spec.CoreInstance == a.cfg.CoreInstance || !a.hasFinalizer(p) {
		return 0, nil // the informer has yet to catch up, or nothing to release
	}
	a.recorder.Eventf(p, corev1.EventTypeNormal, "Removed", "Removed from core instance %s: the pipeline moved to %s", a.cfg.CoreInstance, p.Spec.CoreInstance)
	return 0, a.dropFinalizer(ctx, p)
}

func (a *Agent) dropFinalizer(ctx context.Context, p *v1.Pipeline) error {
	p = p.DeepCopy()
	p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == a.finalizer() })
	_, err := a.cfg.Client.CoreV1().Pipelines(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer of pipeline %s/%s: %w", p.Namespace, p.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Released pipeline", "pipeline", klog.KObj(p))
	return nil
}
