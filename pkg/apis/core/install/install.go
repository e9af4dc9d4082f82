// Package install registers the core.calyptia.com API group in a scheme.
package install

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

// Install registers the internal and v1 types, their conversions, defaulters and field label
// conversions, and autoscaling/v1 Scale for the pipelines/scale subresource.
func Install(scheme *runtime.Scheme) {
	utilruntime.Must(core.AddToScheme(scheme))
	utilruntime.Must(v1.AddToScheme(scheme))
	utilruntime.Must(scheme.SetVersionPriority(v1.SchemeGroupVersion))
	utilruntime.Must(autoscalingv1.AddToScheme(scheme))
	// The API server converts request bodies to the internal version of their group before
	// storage sees them. autoscaling has no internal Go types outside k8s.io/kubernetes, so the v1
	// Scale doubles as its internal version; converting between the two is then a no-op.
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Group: autoscalingv1.GroupName, Version: runtime.APIVersionInternal, Kind: "Scale"}, &autoscalingv1.Scale{})
}
