package fluentbit

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// StorageSettings are a resource profile's buffering settings, applied by Render for the data
// plane. Zero values leave the config's own setting alone.
type StorageSettings struct {
	// Path is the service storage.path, where filesystem buffering keeps its chunks.
	Path string
	// SyncFull selects storage.sync full (true) or normal (false); nil leaves it alone.
	SyncFull *bool
	// MaxChunksUp is storage.max_chunks_up.
	MaxChunksUp int
	// BacklogMemLimit is storage.backlog.mem_limit, a size such as "5M".
	BacklogMemLimit string
	// InputStorageType is every input's storage.type: "filesystem" or "memory".
	InputStorageType string
	// PauseOnChunksOverlimit is every input's storage.pause_on_chunks_overlimit.
	PauseOnChunksOverlimit *bool
}

// RenderOptions carries what rendering substitutes and applies.
type RenderOptions struct {
	// Secrets and Files resolve `{{ secrets.NAME }}` and `{{ files.NAME }}` to their text (for
	// files, whatever the caller wants in the config: usually the path the file is mounted at).
	// Values are never logged nor put in errors.
	Secrets map[string]string
	Files   map[string]string
	// Storage, when set, overrides the config's storage settings with a resource profile's.
	Storage *StorageSettings
}

// Render writes cfg in format with references resolved and the resource profile's storage applied.
// The same config and options always give the same bytes. An unresolved reference is an error.
func Render(cfg *Config, format Format, opts RenderOptions) ([]byte, error) {
	out := cfg.Clone()
	if errs := resolveReferences(out, opts.Secrets, opts.Files); len(errs) > 0 {
		return nil, errs
	}
	if opts.Storage != nil {
		applyStorage(out, opts.Storage)
	}
	return write(out, format)
}

// Convert writes cfg in another format (or the same one, normalised), references left as written.
func Convert(cfg *Config, to Format) ([]byte, error) {
	return write(cfg, to)
}

func write(cfg *Config, format Format) ([]byte, error) {
	switch format {
	case FormatClassic:
		return writeClassic(cfg)
	case FormatYAML:
		return writeYAML(cfg)
	}
	return nil, fmt.Errorf("unknown config format %q", format)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func applyStorage(cfg *Config, st *StorageSettings) {
	services := cfg.SectionsOf(KindService)
	if len(services) == 0 {
		services = []*Section{{Kind: KindService}}
		cfg.Sections = append(services, cfg.Sections...)
	}
	svc := services[0]
	// A later [SERVICE] would override the profile: the profile's keys live in the first only.
	for _, later := range services[1:] {
		for _, key := range []string{"storage.path", "storage.sync", "storage.max_chunks_up", "storage.backlog.mem_limit"} {
			if st.settles(key) {
				later.Delete(key)
			}
		}
	}
	if st.Path != "" {
		svc.Set("storage.path", st.Path)
	}
	if st.SyncFull != nil {
		sync := "normal"
		if *st.SyncFull {
			sync = "full"
		}
		svc.Set("storage.sync", sync)
	}
	if st.MaxChunksUp > 0 {
		svc.Set("storage.max_chunks_up", strconv.Itoa(st.MaxChunksUp))
	}
	if st.BacklogMemLimit != "" {
		svc.Set("storage.backlog.mem_limit", st.BacklogMemLimit)
	}
	for _, in := range cfg.Inputs() {
		if st.InputStorageType != "" {
			in.Set("storage.type", st.InputStorageType)
		}
		if st.PauseOnChunksOverlimit != nil {
			in.Set("storage.pause_on_chunks_overlimit", onOff(*st.PauseOnChunksOverlimit))
		}
	}
}

// settles reports whether the settings set a service key.
func (st *StorageSettings) settles(key string) bool {
	switch key {
	case "storage.path":
		return st.Path != ""
	case "storage.sync":
		return st.SyncFull != nil
	case "storage.max_chunks_up":
		return st.MaxChunksUp > 0
	case "storage.backlog.mem_limit":
		return st.BacklogMemLimit != ""
	}
	return false
}

// classicHeaders spells the known section kinds as Fluent Bit's documentation does.
var classicHeaders = map[string]string{
	KindService: "SERVICE", KindInput: "INPUT", KindFilter: "FILTER", KindOutput: "OUTPUT",
	KindParser: "PARSER", KindMultilineParser: "MULTILINE_PARSER", KindCustom: "CUSTOM",
	KindUpstream: "UPSTREAM", KindPlugins: "PLUGINS", "node": "NODE",
}

var yamlOnlyKinds = map[string]bool{"extensions": true}

func writeClassic(cfg *Config) ([]byte, error) {
	var b bytes.Buffer
	var errs ErrorList
	fail := func(line int, section, plugin, prop, msg string) {
		errs = append(errs, &Error{Line: line, Section: section, Plugin: plugin, Property: prop, Message: msg})
	}
	for _, e := range cfg.Env {
		if !setKeyRe.MatchString(e.Key) || e.Value.Kind != ScalarValue || strings.ContainsAny(e.Value.Scalar, "\n\r") || strings.TrimSpace(e.Value.Scalar) != e.Value.Scalar {
			fail(e.Line, "env", "", e.Key, "cannot be written as a classic @SET (variable name, or multi-line, padded or nested value)")
			continue
		}
		fmt.Fprintf(&b, "@SET %s=%s\n", e.Key, e.Value.Scalar)
	}
	for _, in := range cfg.Includes {
		if in.Path == "" || strings.ContainsAny(in.Path, " \t\r\n") {
			fail(in.Line, "includes", "", "", "a path that is empty or has blanks cannot be written as a classic @INCLUDE")
			continue
		}
		fmt.Fprintf(&b, "@INCLUDE %s\n", in.Path)
	}
	for _, s := range cfg.Sections {
		if yamlOnlyKinds[s.Kind] {
			fail(s.Line, s.Kind, "", "", "has no classic equivalent")
			continue
		}
		if len(s.Processors) > 0 {
			fail(s.Line, s.Kind, s.Name(), "processors", "processors have no classic equivalent")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		if s.Kind == KindUpstream {
			writeClassicUpstream(&b, s, fail)
			continue
		}
		header, ok := classicHeaders[s.Kind]
		if !ok {
			header = strings.ToUpper(s.Kind)
		}
		if !classicNameRe.MatchString(header) || strings.ToLower(header) != s.Kind {
			fail(s.Line, s.Kind, "", "", "section name cannot be written as a classic [SECTION] header")
			continue
		}
		fmt.Fprintf(&b, "[%s]\n", header)
		lines := classicLines(s, fail)
		writeAligned(&b, "    ", lines)
		for _, g := range s.Groups {
			if !classicNameRe.MatchString(g.Name) {
				fail(g.Line, s.Kind, s.Name(), g.Name, "group name cannot be written as a classic [GROUP] header")
				continue
			}
			fmt.Fprintf(&b, "\n    [%s]\n", g.Name)
			writeAligned(&b, "        ", classicLines(&Section{Kind: s.Kind, Properties: g.Properties}, fail))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return b.Bytes(), nil
}

type kv struct{ key, val string }

// classicLines flattens a section's properties to classic key/value lines: a list of scalars
// becomes a repeated key, a multiline parser's YAML `rules` become `rule` lines.
func classicLines(s *Section, fail func(line int, section, plugin, prop, msg string)) []kv {
	var lines []kv
	for _, p := range s.Properties {
		if s.Kind == KindMultilineParser && strings.EqualFold(p.Key, "rules") && p.Value.Kind == ListValue {
			for _, r := range p.Value.List {
				rule, ok := ruleToClassic(r)
				if !ok {
					fail(p.Line, s.Kind, s.Name(), p.Key, "rule cannot be written in the classic format")
					continue
				}
				lines = append(lines, kv{"rule", rule})
			}
			continue
		}
		vals := p.Value.scalars()
		if p.Value.Kind == MapValue || len(vals) != len(p.Value.List) && p.Value.Kind == ListValue {
			fail(p.Line, s.Kind, s.Name(), p.Key, "nested values have no classic equivalent")
			continue
		}
		for _, v := range vals {
			if v.Scalar == "" || strings.ContainsAny(v.Scalar, "\n\r") {
				fail(p.Line, s.Kind, s.Name(), p.Key, "empty or multi-line values cannot be written in the classic format")
				continue
			}
			if strings.TrimSpace(v.Scalar) != v.Scalar {
				fail(p.Line, s.Kind, s.Name(), p.Key, "leading or trailing blanks cannot be written in the classic format")
				continue
			}
			if !classicKeyRe.MatchString(p.Key) {
				fail(p.Line, s.Kind, s.Name(), p.Key, "key cannot be written in the classic format (empty, blanks, or starts with # or [)")
				continue
			}
			lines = append(lines, kv{p.Key, v.Scalar})
		}
	}
	return lines
}

func writeAligned(b *bytes.Buffer, indent string, lines []kv) {
	width := 0
	for _, l := range lines {
		width = max(width, len(l.key))
	}
	for _, l := range lines {
		fmt.Fprintf(b, "%s%-*s %s\n", indent, width, l.key, l.val)
	}
}

// writeClassicUpstream writes a YAML upstream (with `nodes`) as [UPSTREAM] plus [NODE] sections.
func writeClassicUpstream(b *bytes.Buffer, s *Section, fail func(line int, section, plugin, prop, msg string)) {
	up := &Section{Kind: s.Kind, Line: s.Line}
	var nodes []Value
	for _, p := range s.Properties {
		if strings.EqualFold(p.Key, "nodes") && p.Value.Kind == ListValue {
			nodes = append(nodes, p.Value.List...)
			continue
		}
		up.Properties = append(up.Properties, p)
	}
	b.WriteString("[UPSTREAM]\n")
	writeAligned(b, "    ", classicLines(up, fail))
	for _, n := range nodes {
		if n.Kind != MapValue {
			fail(n.Line, s.Kind, s.Name(), "nodes", "each node must be a mapping")
			continue
		}
		b.WriteString("\n[NODE]\n")
		writeAligned(b, "    ", classicLines(&Section{Kind: "node", Properties: n.Map}, fail))
	}
}

var (
	// classicKeyRe is what reads back as the same key: no blanks, not a comment or a header.
	classicKeyRe = regexp.MustCompile(`^[^\s#\[][^\s]*$`)
	// classicNameRe is what reads back as the same section or group header.
	classicNameRe = regexp.MustCompile(`^[^\[\]\r\n]*[^\[\]\s][^\[\]\r\n]*$`)
)

var unescapedQuote = regexp.MustCompile(`(^|[^\\])"`)

var ruleRe = regexp.MustCompile(`^"((?:[^"\\]|\\.)*)"\s+"((?:[^"\\]|\\.)*)"\s+"((?:[^"\\]|\\.)*)"$`)

// ruleToClassic writes a YAML rule mapping {state, regex, next_state} as `"state" "regex" "next"`.
func ruleToClassic(r Value) (string, bool) {
	if r.Kind != MapValue {
		return "", false
	}
	fields := map[string]string{}
	for _, p := range r.Map {
		if p.Value.Kind != ScalarValue || strings.Contains(p.Value.Scalar, "\n") || unescapedQuote.MatchString(p.Value.Scalar) {
			return "", false
		}
		fields[strings.ToLower(p.Key)] = p.Value.Scalar
	}
	state, ok1 := fields["state"]
	regex, ok2 := fields["regex"]
	next, ok3 := fields["next_state"]
	if !ok1 || !ok2 || !ok3 || len(fields) != 3 {
		return "", false
	}
	return `"` + state + `" "` + regex + `" "` + next + `"`, true
}

// ruleFromClassic parses `"state" "regex" "next"` into a YAML rule mapping.
func ruleFromClassic(s string, line int) (Value, bool) {
	m := ruleRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Value{}, false
	}
	out := Value{Kind: MapValue, Line: line}
	for i, k := range []string{"state", "regex", "next_state"} {
		// Kept verbatim: Fluent Bit takes the text between the quotes as written.
		u := m[i+1]
		out.Map = append(out.Map, Property{Key: k, Value: Value{Kind: ScalarValue, Scalar: u, Line: line}, Line: line})
	}
	return out, true
}

func writeYAML(cfg *Config) ([]byte, error) {
	var errs ErrorList
	// YAML is UTF-8; the classic format does not care, so a classic config may hold other bytes.
	walkValues(cfg, func(v *Value, line int) {
		if !utf8.ValidString(v.Scalar) {
			errs = append(errs, &Error{Line: line, Message: "value is not valid UTF-8 and cannot be written as YAML"})
		}
	})
	walkKeys(cfg, func(key string, line int) {
		if !utf8.ValidString(key) {
			errs = append(errs, &Error{Line: line, Message: "key is not valid UTF-8 and cannot be written as YAML"})
		}
	})
	if len(errs) > 0 {
		return nil, errs
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) {
		root.Content = append(root.Content, strNode(key), v)
	}
	if len(cfg.Env) > 0 {
		env := &yaml.Node{Kind: yaml.MappingNode}
		for _, e := range cfg.Env {
			env.Content = append(env.Content, strNode(e.Key), valueNode(e.Value))
		}
		add("env", env)
	}
	if len(cfg.Includes) > 0 {
		inc := &yaml.Node{Kind: yaml.SequenceNode}
		for _, in := range cfg.Includes {
			inc.Content = append(inc.Content, strNode(in.Path))
		}
		add("includes", inc)
	}
	if svc := cfg.Service(); svc != nil {
		add("service", propsNode(svc.Properties))
	}
	lists := map[string]*yaml.Node{}
	var order []string
	list := func(key string) *yaml.Node {
		if n, ok := lists[key]; ok {
			return n
		}
		n := &yaml.Node{Kind: yaml.SequenceNode}
		lists[key] = n
		order = append(order, key)
		return n
	}
	var lastUpstream *yaml.Node
	for _, s := range cfg.Sections {
		switch s.Kind {
		case KindService:
			continue
		case KindInput, KindFilter, KindOutput:
			list("pipeline." + s.Kind + "s").Content = append(list("pipeline."+s.Kind+"s").Content, sectionNode(s, &errs))
		case KindParser:
			list("parsers").Content = append(list("parsers").Content, sectionNode(s, &errs))
		case KindMultilineParser:
			list("multiline_parsers").Content = append(list("multiline_parsers").Content, sectionNode(s, &errs))
		case KindCustom:
			list("customs").Content = append(list("customs").Content, sectionNode(s, &errs))
		case KindUpstream:
			lastUpstream = sectionNode(s, &errs)
			list("upstream_servers").Content = append(list("upstream_servers").Content, lastUpstream)
		case "node":
			if lastUpstream == nil {
				errs = append(errs, &Error{Line: s.Line, Section: s.Kind, Message: "[NODE] outside of an upstream has no YAML equivalent"})
				continue
			}
			var nodes *yaml.Node
			for i := 0; i+1 < len(lastUpstream.Content); i += 2 {
				if lastUpstream.Content[i].Value == "nodes" {
					nodes = lastUpstream.Content[i+1]
				}
			}
			if nodes == nil {
				nodes = &yaml.Node{Kind: yaml.SequenceNode}
				lastUpstream.Content = append(lastUpstream.Content, strNode("nodes"), nodes)
			}
			nodes.Content = append(nodes.Content, propsNode(s.Properties))
		case KindPlugins:
			list("plugins")
			for _, p := range s.Properties {
				for _, v := range p.Value.scalars() {
					list("plugins").Content = append(list("plugins").Content, strNode(v.Scalar))
				}
			}
		default:
			if _, dup := lists[s.Kind]; dup {
				errs = append(errs, &Error{Line: s.Line, Section: s.Kind, Message: "repeated section has no YAML equivalent"})
				continue
			}
			lists[s.Kind] = propsNode(s.Properties)
			order = append(order, s.Kind)
		}
		if len(s.Groups) > 0 {
			errs = append(errs, &Error{Line: s.Groups[0].Line, Section: s.Kind, Plugin: s.Name(), Message: "groups have no YAML equivalent"})
		}
	}
	var pipeline *yaml.Node
	for _, key := range order {
		if sub, ok := strings.CutPrefix(key, "pipeline."); ok {
			if pipeline == nil {
				pipeline = &yaml.Node{Kind: yaml.MappingNode}
				add("pipeline", pipeline)
			}
			pipeline.Content = append(pipeline.Content, strNode(sub), lists[key])
			continue
		}
		add(key, lists[key])
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(root.Content) == 0 {
		return []byte("{}\n"), nil
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return b.Bytes(), nil
}

// sectionNode writes one plugin or parser as a mapping. Repeated classic keys become one key
// with a list, placed where the key first appeared; classic multiline `rule` lines become `rules`.
func sectionNode(s *Section, errs *ErrorList) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	type entry struct {
		key  string
		vals []Value
	}
	var entries []*entry
	byKey := map[string]*entry{}
	for _, p := range s.Properties {
		key := p.Key
		val := p.Value
		if s.Kind == KindMultilineParser && strings.EqualFold(key, "rule") && val.Kind == ScalarValue {
			if r, ok := ruleFromClassic(val.Scalar, p.Line); ok {
				key, val = "rules", Value{Kind: ListValue, List: []Value{r}}
			}
		}
		lk := strings.ToLower(key)
		e, seen := byKey[lk]
		if !seen {
			e = &entry{key: key}
			byKey[lk] = e
			entries = append(entries, e)
		}
		e.vals = append(e.vals, val)
	}
	for _, e := range entries {
		n.Content = append(n.Content, strNode(e.key))
		if len(e.vals) == 1 {
			n.Content = append(n.Content, valueNode(e.vals[0]))
			continue
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, v := range e.vals {
			if v.Kind == ListValue {
				for _, el := range v.List {
					seq.Content = append(seq.Content, valueNode(el))
				}
				continue
			}
			seq.Content = append(seq.Content, valueNode(v))
		}
		n.Content = append(n.Content, seq)
	}
	if len(s.Processors) > 0 {
		procs := &yaml.Node{Kind: yaml.MappingNode}
		for _, set := range s.Processors {
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for _, p := range set.Plugins {
				seq.Content = append(seq.Content, sectionNode(p, errs))
			}
			procs.Content = append(procs.Content, strNode(set.Signal), seq)
		}
		n.Content = append(n.Content, strNode("processors"), procs)
	}
	return n
}

func propsNode(ps []Property) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, p := range ps {
		n.Content = append(n.Content, strNode(p.Key), valueNode(p.Value))
	}
	return n
}

func valueNode(v Value) *yaml.Node {
	switch v.Kind {
	case ListValue:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range v.List {
			n.Content = append(n.Content, valueNode(e))
		}
		return n
	case MapValue:
		return propsNode(v.Map)
	}
	return strNode(v.Scalar)
}

var plainScalarRe = regexp.MustCompile(`^(true|false|[1-9][0-9]{0,17}|0|[0-9]+\.[0-9]+)$`)

// strNode is a string scalar. Multi-line text is written as a literal block; otherwise the encoder
// quotes only what YAML would read as something else than this exact string.
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if plainScalarRe.MatchString(s) {
		// Numbers and booleans are written plain (`flush: 1`); Fluent Bit reads the text anyway.
		n.Tag = ""
	}
	if strings.Contains(s, "\n") && !strings.ContainsAny(s, "\r\t") && strings.TrimRight(s, " \n") == strings.TrimRight(s, "\n") && !strings.HasPrefix(s, " ") {
		n.Style = yaml.LiteralStyle
	}
	return n
}
