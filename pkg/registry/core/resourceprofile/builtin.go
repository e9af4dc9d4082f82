package resourceprofile

import (
	"crypto/sha1"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

// BuiltinLabel marks the built-in profiles in lists, so `-l core.calyptia.com/builtin!=true`
// shows only the namespace's own.
const BuiltinLabel = "core.calyptia.com/builtin"

// builtinSpecs are the profiles every namespace has. They are served from here rather than
// stored, so they exist in namespaces created after the server started and cannot drift.
var builtinSpecs = map[string]core.ResourceProfileSpec{
	// Persistent (filesystem) buffering with a small memory footprint.
	core.ResourceProfileBestEffortLowResource: {
		StorageMaxChunksUp:     32,
		StorageBacklogMemLimit: "5M",
		StorageVolumeSize:      ptr.To(resource.MustParse("256Mi")),
		StorageMaxChunksPause:  true,
		CPUBufferWorkers:       1,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
	},
	// In-memory only: the most throughput, nothing survives a restart.
	core.ResourceProfileHighPerformanceOptimalThroughput: {
		StorageMaxChunksUp: 512,
		CPUBufferWorkers:   4,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		},
	},
	// Larger persistent storage with full sync: nothing acknowledged is lost.
	core.ResourceProfileHighPerformanceGuaranteedDelivery: {
		StorageMaxChunksUp:     512,
		StorageSyncFull:        true,
		StorageBacklogMemLimit: "256M",
		StorageVolumeSize:      ptr.To(resource.MustParse("10Gi")),
		StorageMaxChunksPause:  true,
		CPUBufferWorkers:       4,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		},
	},
}

// builtinNames are the built-in profiles, in a stable order.
var builtinNames = []string{
	core.ResourceProfileBestEffortLowResource,
	core.ResourceProfileHighPerformanceOptimalThroughput,
	core.ResourceProfileHighPerformanceGuaranteedDelivery,
}

// IsBuiltin tells whether name is one of the built-in profiles.
func IsBuiltin(name string) bool {
	_, ok := builtinSpecs[name]
	return ok
}

// Builtin returns the built-in profile name in namespace.
func Builtin(namespace, name string) (*core.ResourceProfile, bool) {
	spec, ok := builtinSpecs[name]
	if !ok {
		return nil, false
	}
	p := &core.ResourceProfile{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			// Stable across replicas and restarts, and distinct per namespace.
			UID:    types.UID(uuidFor(namespace + "/" + name)),
			Labels: map[string]string{BuiltinLabel: "true"},
		},
		Spec: *spec.DeepCopy(),
	}
	return p, true
}

// Builtins returns the built-in profiles of namespace.
func Builtins(namespace string) []core.ResourceProfile {
	out := make([]core.ResourceProfile, 0, len(builtinNames))
	for _, name := range builtinNames {
		p, _ := Builtin(namespace, name)
		out = append(out, *p)
	}
	return out
}

// uuidFor formats a name-based (version 5 layout) UUID of s.
func uuidFor(s string) string {
	h := sha1.Sum([]byte("core.calyptia.com/resourceprofiles/" + s))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
