// Package fluentbit is the Fluent Bit configuration model shared by the API server (validation),
// the data plane (rendering) and the UI (editing): it parses the classic and YAML formats into one
// model that keeps line positions, validates it against the plugin schemas that `fluent-bit -J`
// prints, derives listening ports and template references, and converts and renders it.
package fluentbit

import (
	"strings"
)

// Format is a Fluent Bit configuration syntax.
type Format string

const (
	// FormatClassic is the INI-like format with [SECTION] headers and indented key/value lines.
	FormatClassic Format = "classic"
	// FormatYAML is the YAML format with service, pipeline, parsers and related top-level keys.
	FormatYAML Format = "yaml"
)

// Section kinds. Kinds are lower case whatever the source spelled; unknown classic sections keep
// their lower-cased header so that nothing the user wrote is dropped.
const (
	KindService         = "service"
	KindInput           = "input"
	KindFilter          = "filter"
	KindOutput          = "output"
	KindParser          = "parser"
	KindMultilineParser = "multiline_parser"
	KindCustom          = "custom"
	KindUpstream        = "upstream"
	KindPlugins         = "plugins"
	KindProcessor       = "processor"
)

// ValueKind says which field of a Value is meaningful.
type ValueKind int

const (
	// ScalarValue is a plain string value, the only kind the classic format has.
	ScalarValue ValueKind = iota
	// ListValue is a YAML sequence. A sequence of scalars is the same as repeating the key in the
	// classic format.
	ListValue
	// MapValue is a YAML mapping (e.g. an input's routes or telemetry block).
	MapValue
)

// Value is a property value. Classic configs only have scalars; YAML adds lists and maps.
type Value struct {
	Kind   ValueKind
	Scalar string
	List   []Value
	Map    []Property
	Line   int
	Column int
}

// Property is one key/value pair with the position of its key.
type Property struct {
	Key    string
	Value  Value
	Line   int
	Column int
}

// Group is a named block of properties nested in a section (classic `[GROUP name]`).
type Group struct {
	Name       string
	Line       int
	Properties []Property
}

// ProcessorSet is the list of processors a plugin runs for one signal (logs, metrics or traces).
type ProcessorSet struct {
	Signal  string
	Line    int
	Plugins []*Section
}

// Section is one block of a configuration: the service settings, a plugin instance, a parser...
type Section struct {
	Kind       string
	Line       int
	Column     int
	Properties []Property
	Groups     []*Group
	Processors []ProcessorSet
}

// Include is an `@INCLUDE` line or an entry of YAML `includes`.
type Include struct {
	Path string
	Line int
}

// Config is a parsed configuration: sections in the order they were written.
type Config struct {
	// Format is the syntax the config was parsed from.
	Format   Format
	Env      []Property
	Includes []Include
	Sections []*Section
}

// Name returns the section's `name` property (the plugin name for plugin sections).
func (s *Section) Name() string {
	if p := s.Property("name"); p != nil {
		return p.Value.Scalar
	}
	return ""
}

// Property returns the first property with the given key, compared case-insensitively as Fluent
// Bit does, or nil.
func (s *Section) Property(key string) *Property {
	for i := range s.Properties {
		if strings.EqualFold(s.Properties[i].Key, key) {
			return &s.Properties[i]
		}
	}
	return nil
}

// Get returns the scalar value of the first property with the given key.
func (s *Section) Get(key string) (string, bool) {
	p := s.Property(key)
	if p == nil || p.Value.Kind != ScalarValue {
		return "", false
	}
	return p.Value.Scalar, true
}

// Set gives the key one value: the first property with the key (compared case-insensitively)
// takes the value and later ones are removed; without one, the property is appended.
func (s *Section) Set(key, value string) {
	out := s.Properties[:0]
	found := false
	for _, p := range s.Properties {
		if strings.EqualFold(p.Key, key) {
			if found {
				continue
			}
			found = true
			p.Value = Value{Kind: ScalarValue, Scalar: value, Line: p.Value.Line, Column: p.Value.Column}
		}
		out = append(out, p)
	}
	s.Properties = out
	if !found {
		s.Properties = append(s.Properties, Property{Key: key, Value: Value{Kind: ScalarValue, Scalar: value}})
	}
}

// Delete removes every property with the key.
func (s *Section) Delete(key string) {
	out := s.Properties[:0]
	for _, p := range s.Properties {
		if !strings.EqualFold(p.Key, key) {
			out = append(out, p)
		}
	}
	s.Properties = out
}

// IsPlugin reports whether the section instantiates a plugin (and so has a schema).
func (s *Section) IsPlugin() bool {
	switch s.Kind {
	case KindInput, KindFilter, KindOutput, KindCustom, KindProcessor:
		return true
	}
	return false
}

// SectionsOf returns the sections of one kind, in order.
func (c *Config) SectionsOf(kind string) []*Section {
	var out []*Section
	for _, s := range c.Sections {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

// Inputs returns the input sections in order.
func (c *Config) Inputs() []*Section { return c.SectionsOf(KindInput) }

// Filters returns the filter sections in order.
func (c *Config) Filters() []*Section { return c.SectionsOf(KindFilter) }

// Outputs returns the output sections in order.
func (c *Config) Outputs() []*Section { return c.SectionsOf(KindOutput) }

// Service returns the service section, merging repeated ones, or nil when there is none.
func (c *Config) Service() *Section {
	var merged *Section
	for _, s := range c.SectionsOf(KindService) {
		if merged == nil {
			merged = &Section{Kind: KindService, Line: s.Line, Column: s.Column}
		}
		merged.Properties = append(merged.Properties, s.Properties...)
	}
	return merged
}

// Clone returns a deep copy, so that rendering can change values without touching the original.
func (c *Config) Clone() *Config {
	out := &Config{Format: c.Format, Env: cloneProps(c.Env)}
	out.Includes = append([]Include(nil), c.Includes...)
	for _, s := range c.Sections {
		out.Sections = append(out.Sections, s.clone())
	}
	return out
}

func (s *Section) clone() *Section {
	out := &Section{Kind: s.Kind, Line: s.Line, Column: s.Column, Properties: cloneProps(s.Properties)}
	for _, g := range s.Groups {
		out.Groups = append(out.Groups, &Group{Name: g.Name, Line: g.Line, Properties: cloneProps(g.Properties)})
	}
	for _, ps := range s.Processors {
		cp := ProcessorSet{Signal: ps.Signal, Line: ps.Line}
		for _, p := range ps.Plugins {
			cp.Plugins = append(cp.Plugins, p.clone())
		}
		out.Processors = append(out.Processors, cp)
	}
	return out
}

func cloneProps(in []Property) []Property {
	if in == nil {
		return nil
	}
	out := make([]Property, len(in))
	for i, p := range in {
		out[i] = Property{Key: p.Key, Value: p.Value.clone(), Line: p.Line, Column: p.Column}
	}
	return out
}

func (v Value) clone() Value {
	out := Value{Kind: v.Kind, Scalar: v.Scalar, Line: v.Line, Column: v.Column, Map: cloneProps(v.Map)}
	if v.List != nil {
		out.List = make([]Value, len(v.List))
		for i, e := range v.List {
			out.List[i] = e.clone()
		}
	}
	return out
}

// scalars returns the scalar occurrences of a value: the value itself, or the scalar elements of
// a list (a YAML list of scalars means the same as a repeated classic key).
func (v Value) scalars() []Value {
	switch v.Kind {
	case ScalarValue:
		return []Value{v}
	case ListValue:
		var out []Value
		for _, e := range v.List {
			if e.Kind == ScalarValue {
				out = append(out, e)
			}
		}
		return out
	}
	return nil
}
