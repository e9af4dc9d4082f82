package v1

// BuiltinResourceProfiles are the profiles every namespace has without storing them.
var BuiltinResourceProfiles = []string{
	ResourceProfileBestEffortLowResource,
	ResourceProfileHighPerformanceOptimalThroughput,
	ResourceProfileHighPerformanceGuaranteedDelivery,
}

// IsBuiltinResourceProfile tells whether name is one of BuiltinResourceProfiles.
func IsBuiltinResourceProfile(name string) bool {
	for _, b := range BuiltinResourceProfiles {
		if b == name {
			return true
		}
	}
	return false
}

// PipelineResourceProfile is the profile a pipeline runs with: its own, else the default.
// (The server defaults the field; clients reading older objects may still find it empty.)
func PipelineResourceProfile(spec *PipelineSpec) string {
	if spec.ResourceProfile == "" {
		return DefaultResourceProfile
	}
	return spec.ResourceProfile
}

// PipelineConfigFormat is the pipeline's config format, inferred as the API documents when
// unset.
func PipelineConfigFormat(spec *PipelineSpec) ConfigFormat {
	if spec.ConfigFormat != "" {
		return spec.ConfigFormat
	}
	return InferConfigFormat(spec.Config)
}
