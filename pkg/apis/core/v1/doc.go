// +k8s:openapi-gen=true
// +k8s:deepcopy-gen=package
// +k8s:conversion-gen=github.com/calyptia/core-management-plane/pkg/apis/core
// +k8s:defaulter-gen=TypeMeta
// +groupName=core.calyptia.com
// +k8s:openapi-model-package=com.calyptia.core.v1

// Package v1 is version v1 of the core.calyptia.com API: core instances (data planes), the
// Fluent Bit pipelines that run on them, pipeline secrets and resource profiles.
package v1
