// Package charts renders the Helm chart of this repository (charts/calyptia-core) with the
// Helm SDK, the way `helm template` does: for its tests, for artifacts/deploy (which is
// generated from the chart, see DeployManifests) and for the end-to-end tests that install it.
package charts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// CoreChart is the chart's directory, relative to the repository root.
const CoreChart = "charts/calyptia-core"

// KubeVersion is the Kubernetes version renders assume (.Capabilities.KubeVersion): the one
// this project builds and tests against. Helm's own default depends on how the binary was
// built (v1.20 in test binaries), which would fail the chart's kubeVersion constraint.
const KubeVersion = "v1.37.2"

// Load reads a chart from its directory.
func Load(dir string) (*chart.Chart, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", dir, err)
	}
	return ch, nil
}

// Object is one rendered object and the template it came from.
type Object struct {
	*unstructured.Unstructured
	// Source is the template's path in the chart, e.g. calyptia-core/templates/ingress.yaml.
	Source string
	// Text is the object as the template wrote it, comments included.
	Text string
}

// Rendered is what a chart renders to.
type Rendered struct {
	Objects []Object
	Notes   string
}

// Find returns the object of that kind, namespace ("" for cluster-scoped) and name, or nil.
func (r *Rendered) Find(kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range r.Objects {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o.Unstructured
		}
	}
	return nil
}

// Kinds counts the objects per kind.
func (r *Rendered) Kinds() map[string]int {
	n := map[string]int{}
	for _, o := range r.Objects {
		n[o.GetKind()]++
	}
	return n
}

// Render renders ch as release name in namespace with values (merged over the chart's own, and
// checked against values.schema.json), without a cluster: Helm's lookup finds nothing, so
// every generated certificate, key and password is new, as on a first install.
func Render(ch *chart.Chart, name, namespace string, values map[string]any) (*Rendered, error) {
	cfg := &action.Configuration{
		Releases:   storage.Init(driver.NewMemory()),
		KubeClient: &kubefake.PrintingKubeClient{Out: io.Discard},
	}
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = name
	install.Namespace = namespace
	install.Replace = true
	kv, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	install.KubeVersion = kv
	if values == nil {
		values = map[string]any{}
	}
	r, err := install.Run(ch, values)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", r)
	}
	objs, err := ParseManifest(rel.Manifest)
	if err != nil {
		return nil, err
	}
	for _, h := range rel.Hooks {
		// The chart has no hooks; one appearing would escape every check made on Objects.
		return nil, fmt.Errorf("unexpected hook %s in %s", h.Name, h.Path)
	}
	return &Rendered{Objects: objs, Notes: rel.Info.Notes}, nil
}

var (
	documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceComment     = regexp.MustCompile(`(?m)^# Source: (\S+)[ \t]*$`)
)

// ParseManifest splits a release manifest into its objects, each with the template it came
// from (Helm's "# Source:" comment).
func ParseManifest(manifest string) ([]Object, error) {
	var objs []Object
	for _, doc := range documentSeparator.Split(manifest, -1) {
		src := ""
		if m := sourceComment.FindStringSubmatch(doc); m != nil {
			src = m[1]
		}
		text := strings.TrimSpace(sourceComment.ReplaceAllString(doc, ""))
		var content map[string]any
		if err := yaml.Unmarshal([]byte(text), &content); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if len(content) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: content}
		if u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: an object without kind or name:\n%s", src, text)
		}
		objs = append(objs, Object{Unstructured: u, Source: src, Text: text})
	}
	if len(objs) == 0 {
		return nil, errors.New("the manifest holds no object")
	}
	return objs, nil
}

// YAML is the rendered objects as one YAML stream.
func (r *Rendered) YAML() []byte {
	var b bytes.Buffer
	for _, o := range r.Objects {
		b.WriteString("---\n")
		b.WriteString(o.Text)
		b.WriteString("\n")
	}
	return b.Bytes()
}
