package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/roundtrip"

	"github.com/calyptia/core-management-plane/pkg/apis/core/fuzzer"
)

// TestRoundTripTypes fuzzes every type of the group through internal -> v1 -> internal (JSON,
// YAML and CBOR) and fails when a field is lost or changed on the way.
func TestRoundTripTypes(t *testing.T) {
	roundtrip.RoundTripTestForAPIGroup(t, Install, fuzzer.Funcs)
}
