package v1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// Field selectors the server supports beyond metadata.name and metadata.namespace. The data plane
// watches its own pipelines with spec.coreInstance=NAME.
const (
	PipelineCoreInstanceField = "spec.coreInstance"
	PipelinePhaseField        = "status.phase"
)

func addFieldLabelConversionFuncs(scheme *runtime.Scheme) error {
	if err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind("Pipeline"),
		func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace", PipelineCoreInstanceField, PipelinePhaseField:
				return label, value, nil
			default:
				return "", "", fmt.Errorf("field label not supported: %s", label)
			}
		}); err != nil {
		return fmt.Errorf("registering pipeline field labels: %w", err)
	}
	for _, kind := range []string{"CoreInstance", "PipelineSecret", "ResourceProfile"} {
		if err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind(kind),
			func(label, value string) (string, string, error) {
				switch label {
				case "metadata.name", "metadata.namespace":
					return label, value, nil
				default:
					return "", "", fmt.Errorf("field label not supported: %s", label)
				}
			}); err != nil {
			return fmt.Errorf("registering %s field labels: %w", kind, err)
		}
	}
	return nil
}
