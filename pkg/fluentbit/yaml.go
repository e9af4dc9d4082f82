package fluentbit

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxYAMLDepth bounds nesting so that hostile input cannot exhaust the stack; real configs nest a
// handful of levels (routes and processors are the deepest).
const maxYAMLDepth = 32

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

// maxYAMLValues bounds how many values aliases may expand to: a few aliases can otherwise stand
// for exponentially many values ("billion laughs").
const maxYAMLValues = 100000

type yamlParser struct {
	errs   ErrorList
	values int
}

func (p *yamlParser) fail(n *yaml.Node, format string, args ...any) {
	e := &Error{Message: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

// parseYAML parses Fluent Bit's YAML format: a mapping with `env`, `includes`, `service`,
// `pipeline` (`inputs`, `filters`, `outputs`, each a list of plugin mappings, plugins may carry
// `processors`), `parsers`, `multiline_parsers`, `customs`, `plugins` and `upstream_servers`.
func parseYAML(src []byte) (cfg *Config, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		// libyaml, which Fluent Bit uses, accepts the JSON escape `\/` in double-quoted strings;
		// yaml.v3 does not. Retry with it unescaped (lines stay where they were).
		fixed, changed := unescapeSlashes(src)
		if !strings.Contains(err.Error(), "unknown escape character") || !changed {
			return nil, ErrorList{yamlSyntaxError(err)}
		}
		doc = yaml.Node{}
		if err := yaml.Unmarshal(fixed, &doc); err != nil {
			return nil, ErrorList{yamlSyntaxError(err)}
		}
	}
	cfg = &Config{Format: FormatYAML}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return cfg, nil // an empty document is an empty configuration
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return cfg, nil
	}
	p := &yamlParser{}
	if root.Kind != yaml.MappingNode {
		p.fail(root, "the configuration must be a YAML mapping")
		return nil, p.errs
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolveAlias(root.Content[i+1])
		switch strings.ToLower(k.Value) {
		case "env":
			cfg.Env = append(cfg.Env, p.flatMap(v, "env")...)
		case "includes":
			for _, n := range p.scalarList(v, "includes") {
				cfg.Includes = append(cfg.Includes, Include{Path: n.Value, Line: n.Line})
			}
		case "service":
			if v.Kind != yaml.MappingNode {
				if !isNull(v) {
					p.fail(v, "service must be a mapping")
				}
				continue
			}
			cfg.Sections = append(cfg.Sections, &Section{Kind: KindService, Line: k.Line, Column: k.Column, Properties: p.props(v, 0)})
		case "pipeline":
			p.pipeline(cfg, v)
		case "parsers":
			cfg.Sections = append(cfg.Sections, p.sectionList(v, KindParser, "parsers")...)
		case "multiline_parsers":
			cfg.Sections = append(cfg.Sections, p.sectionList(v, KindMultilineParser, "multiline_parsers")...)
		case "customs":
			cfg.Sections = append(cfg.Sections, p.sectionList(v, KindCustom, "customs")...)
		case "upstream_servers":
			cfg.Sections = append(cfg.Sections, p.sectionList(v, KindUpstream, "upstream_servers")...)
		case "plugins":
			s := &Section{Kind: KindPlugins, Line: k.Line, Column: k.Column}
			for _, n := range p.scalarList(v, "plugins") {
				s.Properties = append(s.Properties, Property{Key: "path", Value: scalarValue(n), Line: n.Line, Column: n.Column})
			}
			cfg.Sections = append(cfg.Sections, s)
		case "extensions":
			// Extensions (e.g. OpAMP) are mappings of named blocks of settings.
			if v.Kind != yaml.MappingNode {
				p.fail(v, "extensions must be a mapping")
				continue
			}
			cfg.Sections = append(cfg.Sections, &Section{Kind: "extensions", Line: k.Line, Column: k.Column, Properties: p.props(v, 0)})
		default:
			// Fluent Bit keeps other top-level keys as free-form sections of scalar entries.
			if v.Kind != yaml.MappingNode {
				p.fail(v, "section %q must be a mapping", k.Value)
				continue
			}
			cfg.Sections = append(cfg.Sections, &Section{Kind: strings.ToLower(k.Value), Line: k.Line, Column: k.Column, Properties: p.flatMap(v, k.Value)})
		}
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return cfg, nil
}

func yamlSyntaxError(err error) *Error {
	msg := err.Error()
	e := &Error{Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		if m := yamlLineRe.FindStringSubmatch(te.Errors[0]); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
		}
	}
	return e
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxYAMLDepth; i++ {
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "")
}

func scalarValue(n *yaml.Node) Value {
	// Fluent Bit reads YAML scalars as the text written: `name: null` is the null output plugin.
	return Value{Kind: ScalarValue, Scalar: n.Value, Line: n.Line, Column: n.Column}
}

func (p *yamlParser) pipeline(cfg *Config, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		if !isNull(v) {
			p.fail(v, "pipeline must be a mapping of inputs, filters and outputs")
		}
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, list := v.Content[i], resolveAlias(v.Content[i+1])
		var kind string
		switch strings.ToLower(k.Value) {
		case "inputs":
			kind = KindInput
		case "filters":
			kind = KindFilter
		case "outputs":
			kind = KindOutput
		default:
			p.fail(k, "unknown pipeline key %q (expected inputs, filters or outputs)", k.Value)
			continue
		}
		cfg.Sections = append(cfg.Sections, p.sectionList(list, kind, "pipeline."+strings.ToLower(k.Value))...)
	}
}

// sectionList reads a list of mappings, each becoming one section.
func (p *yamlParser) sectionList(v *yaml.Node, kind, what string) []*Section {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.fail(v, "%s must be a list", what)
		return nil
	}
	var out []*Section
	for _, item := range v.Content {
		item = resolveAlias(item)
		if item.Kind != yaml.MappingNode {
			p.fail(item, "each entry of %s must be a mapping", what)
			continue
		}
		out = append(out, p.section(item, kind, 0))
	}
	return out
}

func (p *yamlParser) section(item *yaml.Node, kind string, depth int) *Section {
	s := &Section{Kind: kind, Line: item.Line, Column: item.Column}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], resolveAlias(item.Content[i+1])
		if strings.EqualFold(k.Value, "processors") && (kind == KindInput || kind == KindOutput) && v.Kind == yaml.MappingNode {
			s.Processors = append(s.Processors, p.processors(v, depth+1)...)
			continue
		}
		s.Properties = append(s.Properties, Property{Key: k.Value, Value: p.value(v, depth+1), Line: k.Line, Column: k.Column})
	}
	return s
}

func (p *yamlParser) processors(v *yaml.Node, depth int) []ProcessorSet {
	var out []ProcessorSet
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, list := v.Content[i], resolveAlias(v.Content[i+1])
		signal := strings.ToLower(k.Value)
		switch signal {
		case "logs", "metrics", "traces", "profiles":
		default:
			p.fail(k, "unknown processor signal %q (expected logs, metrics or traces)", k.Value)
			continue
		}
		set := ProcessorSet{Signal: signal, Line: k.Line}
		if list.Kind != yaml.SequenceNode {
			p.fail(list, "processors.%s must be a list", signal)
			continue
		}
		for _, item := range list.Content {
			item = resolveAlias(item)
			if item.Kind != yaml.MappingNode {
				p.fail(item, "each processor must be a mapping")
				continue
			}
			set.Plugins = append(set.Plugins, p.section(item, KindProcessor, depth+1))
		}
		out = append(out, set)
	}
	return out
}

func (p *yamlParser) value(v *yaml.Node, depth int) Value {
	p.values++
	if p.values == maxYAMLValues {
		p.fail(v, "too many values (aliases expand to more than %d)", maxYAMLValues)
	}
	if p.values >= maxYAMLValues {
		return Value{Line: v.Line, Column: v.Column}
	}
	if depth > maxYAMLDepth {
		p.fail(v, "value nested too deeply")
		return Value{Line: v.Line, Column: v.Column}
	}
	switch v.Kind {
	case yaml.MappingNode:
		return Value{Kind: MapValue, Map: p.props(v, depth), Line: v.Line, Column: v.Column}
	case yaml.SequenceNode:
		out := Value{Kind: ListValue, List: []Value{}, Line: v.Line, Column: v.Column}
		for _, e := range v.Content {
			out.List = append(out.List, p.value(resolveAlias(e), depth+1))
		}
		return out
	default:
		return scalarValue(v)
	}
}

func (p *yamlParser) props(v *yaml.Node, depth int) []Property {
	var out []Property
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolveAlias(v.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.fail(k, "keys must be plain strings")
			continue
		}
		out = append(out, Property{Key: k.Value, Value: p.value(val, depth+1), Line: k.Line, Column: k.Column})
	}
	return out
}

// flatMap reads a mapping whose values must all be scalars (env, free-form sections).
func (p *yamlParser) flatMap(v *yaml.Node, what string) []Property {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.fail(v, "%s must be a mapping", what)
		return nil
	}
	var out []Property
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolveAlias(v.Content[i+1])
		if k.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode {
			p.fail(val, "%s: %q must have a plain value, not a nested structure", what, k.Value)
			continue
		}
		out = append(out, Property{Key: k.Value, Value: scalarValue(val), Line: k.Line, Column: k.Column})
	}
	return out
}

func (p *yamlParser) scalarList(v *yaml.Node, what string) []*yaml.Node {
	if isNull(v) {
		return nil
	}
	if v.Kind == yaml.ScalarNode {
		return []*yaml.Node{v}
	}
	if v.Kind != yaml.SequenceNode {
		p.fail(v, "%s must be a list", what)
		return nil
	}
	var out []*yaml.Node
	for _, e := range v.Content {
		e = resolveAlias(e)
		if e.Kind != yaml.ScalarNode {
			p.fail(e, "each entry of %s must be a string", what)
			continue
		}
		out = append(out, e)
	}
	return out
}

// unescapeSlashes rewrites `\/` to `/` inside double-quoted scalars. A quote opens a scalar only
// where a scalar can start (after ": ", "- ", "[", "{", "," or at the start of a line), so quotes
// inside plain scalars and comments are left alone.
func unescapeSlashes(src []byte) ([]byte, bool) {
	out := make([]byte, 0, len(src))
	changed := false
	inDouble, inSingle, inComment := false, false, false
	prev := byte('\n') // last non-blank byte outside quotes
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case inComment:
			if c == '\n' {
				inComment = false
				prev = '\n'
			}
		case inDouble:
			if c == '\\' && i+1 < len(src) {
				if src[i+1] == '/' {
					out = append(out, '/')
					i++
					changed = true
					continue
				}
				out = append(out, c, src[i+1])
				i++
				continue
			}
			if c == '"' {
				inDouble = false
				prev = c
			}
		case inSingle:
			if c == '\'' {
				inSingle = false
				prev = c
			}
		default:
			switch {
			case c == '#' && (i == 0 || src[i-1] == ' ' || src[i-1] == '\t' || src[i-1] == '\n'):
				inComment = true
			case (c == '"' || c == '\'') && strings.IndexByte(":-[{,\n", prev) >= 0:
				inDouble, inSingle = c == '"', c == '\''
			case c == '\n':
				prev = c
			case c != ' ' && c != '\t' && c != '\r':
				prev = c
			}
		}
		out = append(out, c)
	}
	return out, changed
}
