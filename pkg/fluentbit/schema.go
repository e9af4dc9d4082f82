package fluentbit

import (
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// DefaultSchemaVersion is Calyptia Core's Fluent Bit distribution, what Core pipelines run.
const DefaultSchemaVersion = "26.8.5"

// UpstreamSchemaVersion is the upstream Fluent Bit release whose schema is also embedded.
const UpstreamSchemaVersion = "5.1.1"

//go:embed schema/*.json
var schemaFS embed.FS

var schemaFiles = map[string]string{
	DefaultSchemaVersion:  "schema/core-fluent-bit-26.8.5.json",
	UpstreamSchemaVersion: "schema/fluent-bit-5.1.1.json",
}

// SchemaVersions lists the versions LoadSchema accepts.
func SchemaVersions() []string {
	out := make([]string, 0, len(schemaFiles))
	for v := range schemaFiles {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Option is one property a plugin accepts, as `fluent-bit -J` describes it.
type Option struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Default     *string `json:"default"`
	Type        string  `json:"type"`
}

// PluginSchema is one plugin with every property it accepts (its own options plus the global,
// networking and TLS options that apply to it).
type PluginSchema struct {
	Type        string
	Name        string
	Description string
	options     map[string]*Option // by lower-cased name
	prefixes    []*Option          // "prefixed string" options accept any key starting with the name
	names       []string           // for suggestions
	// hasOwnOptions is false for plugins without a config map; Fluent Bit does not check their
	// property names.
	hasOwnOptions bool
}

// Option returns the option a property key selects, or nil when the plugin does not accept it.
func (p *PluginSchema) Option(key string) *Option {
	k := strings.ToLower(key)
	if o, ok := p.options[k]; ok {
		return o
	}
	for _, o := range p.prefixes {
		if strings.HasPrefix(k, strings.ToLower(o.Name)) {
			return o
		}
	}
	return nil
}

// Schema is the set of plugins one Fluent Bit version accepts.
type Schema struct {
	Version    string
	plugins    map[string]map[string]*PluginSchema // kind -> name -> plugin
	pluginList map[string][]string
}

// Plugin returns the schema of a plugin of a section kind (input, filter, output, custom,
// processor), or nil. Processors may also be filters, as in Fluent Bit.
func (s *Schema) Plugin(kind, name string) *PluginSchema {
	name = strings.ToLower(name)
	if p := s.plugins[kind][name]; p != nil {
		return p
	}
	if kind == KindProcessor {
		return s.plugins[KindFilter][name]
	}
	return nil
}

// PluginNames lists the plugin names of a section kind, sorted.
func (s *Schema) PluginNames(kind string) []string {
	if kind == KindProcessor {
		return append(append([]string(nil), s.pluginList[KindProcessor]...), s.pluginList[KindFilter]...)
	}
	return s.pluginList[kind]
}

var (
	schemaMu    sync.Mutex
	schemaCache = map[string]*Schema{}
)

// LoadSchema returns the embedded schema of a Fluent Bit version (see SchemaVersions), parsed once
// and cached.
func LoadSchema(version string) (*Schema, error) {
	schemaMu.Lock()
	defer schemaMu.Unlock()
	if s, ok := schemaCache[version]; ok {
		return s, nil
	}
	file, ok := schemaFiles[version]
	if !ok {
		return nil, fmt.Errorf("no Fluent Bit schema for version %q (have %s)", version, strings.Join(SchemaVersions(), ", "))
	}
	raw, err := schemaFS.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read embedded schema %s: %w", file, err)
	}
	s, err := decodeSchema(raw)
	if err != nil {
		return nil, fmt.Errorf("decode embedded schema %s: %w", file, err)
	}
	if s.Version != version {
		return nil, fmt.Errorf("embedded schema %s is for version %q, not %q", file, s.Version, version)
	}
	schemaCache[version] = s
	return s, nil
}

type rawPlugin struct {
	Type        string               `json:"type"`
	Name        string               `json:"name"`
	Description string               `json:"description"`
	Properties  map[string][]*Option `json:"properties"`
}

func decodeSchema(raw []byte) (*Schema, error) {
	var doc struct {
		FluentBit struct {
			Version string `json:"version"`
		} `json:"fluent-bit"`
		Customs    []rawPlugin `json:"customs"`
		Inputs     []rawPlugin `json:"inputs"`
		Processors []rawPlugin `json:"processors"`
		Filters    []rawPlugin `json:"filters"`
		Outputs    []rawPlugin `json:"outputs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	s := &Schema{Version: doc.FluentBit.Version, plugins: map[string]map[string]*PluginSchema{}, pluginList: map[string][]string{}}
	for kind, list := range map[string][]rawPlugin{
		KindCustom: doc.Customs, KindInput: doc.Inputs, KindProcessor: doc.Processors,
		KindFilter: doc.Filters, KindOutput: doc.Outputs,
	} {
		m := map[string]*PluginSchema{}
		for _, rp := range list {
			p := &PluginSchema{Type: rp.Type, Name: rp.Name, Description: rp.Description, options: map[string]*Option{}}
			// Deterministic order of the property groups so that a name listed twice resolves the
			// same way every time.
			for _, group := range []string{"global_options", "networking", "network_tls", "options"} {
				for _, o := range rp.Properties[group] {
					if o.Type == "prefixed string" {
						p.prefixes = append(p.prefixes, o)
					} else {
						p.options[strings.ToLower(o.Name)] = o
					}
					p.names = append(p.names, o.Name)
				}
			}
			p.hasOwnOptions = len(rp.Properties["options"]) > 0
			m[strings.ToLower(rp.Name)] = p
			s.pluginList[kind] = append(s.pluginList[kind], rp.Name)
		}
		sort.Strings(s.pluginList[kind])
		s.plugins[kind] = m
	}
	return s, nil
}
