package fluentbit

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	envVarRe = regexp.MustCompile(`\$\{([^}]*)\}`)
	sizeRe   = regexp.MustCompile(`(?i)^[+-]?\d+(\.\d+)?\s*([kmgt]b?|b)?$`)
	timeRe   = regexp.MustCompile(`(?i)^[+-]?\d+(\.\d+)?\s*(ms|s|m|h|d)?$`)
)

// scalarTypes are the option types that take one value: setting them twice is an error in
// Fluent Bit ("configuration property 'x' is set 2 times"). List-like types may repeat.
var scalarTypes = map[string]bool{
	"boolean": true, "integer": true, "double": true, "time": true, "size": true,
}

// serviceTypes are the service properties whose values Fluent Bit parses into numbers or
// switches. -J does not describe the service section, so this is the documented subset; other
// service keys are accepted as Fluent Bit accepts them.
var serviceTypes = map[string]string{
	"flush": "double", "grace": "integer", "daemon": "boolean", "http_server": "boolean",
	"http_port": "integer", "hot_reload": "boolean", "health_check": "boolean",
	"hc_errors_count": "integer", "hc_retry_failure_count": "integer", "hc_period": "integer",
	"storage.metrics": "boolean", "storage.checksum": "boolean", "storage.max_chunks_up": "integer",
	"storage.backlog.mem_limit": "size", "storage.delete_irrecoverable_chunks": "boolean",
	"scheduler.cap": "integer", "scheduler.base": "integer", "coro_stack_size": "integer",
	"json.convert_nan_to_null": "boolean", "enable_chunk_trace": "boolean",
}

// coreProperties are properties Fluent Bit's core sets on every instance of a kind before the
// plugin's own config map is consulted (flb_input_set_property / flb_output_set_property), so they
// are accepted although `fluent-bit -J` does not list them for every plugin. A key ending in "."
// is a prefix.
var coreProperties = map[string][]string{
	KindInput:     {"listen", "host", "port", "ipv6", "net.", "tls", "tls."},
	KindOutput:    {"host", "port", "ipv6", "workers", "storage.total_limit_size", "net.", "tls", "tls."},
	KindProcessor: {"condition"},
}

// coreTypes are the types of the core properties Fluent Bit parses.
var coreTypes = map[string]string{
	"port": "integer", "ipv6": "boolean", "workers": "integer", "storage.total_limit_size": "size",
}

// httpServerInputs share Fluent Bit's HTTP server, whose OAuth2 JWT validation settings
// (oauth2.*) -J does not list.
var httpServerInputs = map[string]bool{
	"http": true, "opentelemetry": true, "splunk": true, "elasticsearch": true, "prometheus_remote_write": true,
}

func isCoreProperty(kind, plugin, key string) bool {
	for _, c := range coreProperties[kind] {
		if key == c || (strings.HasSuffix(c, ".") && strings.HasPrefix(key, c)) {
			return true
		}
	}
	return kind == KindInput && httpServerInputs[plugin] && strings.HasPrefix(key, "oauth2.")
}

// Validate checks what Fluent Bit itself would refuse when loading cfg: unknown plugins, unknown
// properties, property values of the wrong type, properties set twice, and filters without a
// match rule. Errors are sorted by line. Pipeline-level rules (at least one input and one output,
// outputs with a match rule, which Fluent Bit only warns about) are ValidatePipeline's job.
func (s *Schema) Validate(cfg *Config) ErrorList {
	v := &validator{schema: s, env: map[string]string{}}
	for _, p := range cfg.Env {
		v.env[p.Key] = p.Value.Scalar
	}
	for _, sec := range cfg.Sections {
		switch sec.Kind {
		case KindService:
			v.service(sec)
		case KindInput, KindFilter, KindOutput, KindCustom:
			// Fluent Bit refuses a filter without a match rule; an output without one only gets a
			// warning (ValidatePipeline reports it).
			v.plugin(sec, sec.Kind == KindFilter)
		case KindParser, KindMultilineParser:
			if sec.Name() == "" {
				v.add(&Error{Line: sec.Line, Column: sec.Column, Section: sec.Kind, Message: "missing the 'name' property"})
			}
		}
	}
	sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
	return v.errs
}

// maxSuggestions bounds the did-you-mean work per validation: a hostile config with thousands of
// unknown names would otherwise cost thousands of edit-distance scans.
const maxSuggestions = 100

type validator struct {
	schema      *Schema
	env         map[string]string
	errs        ErrorList
	suggestions int
}

func (v *validator) suggest(name string, candidates []string) string {
	if v.suggestions >= maxSuggestions {
		return ""
	}
	v.suggestions++
	return suggest(name, candidates)
}

func (v *validator) add(e *Error) { v.errs = append(v.errs, e) }

// expand substitutes ${VAR} with variables the config itself defines; unknown variables expand
// to nothing, as in Fluent Bit when the environment does not define them either.
func (v *validator) expand(s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return envVarRe.ReplaceAllStringFunc(s, func(m string) string {
		return v.env[m[2:len(m)-1]]
	})
}

func (v *validator) plugin(sec *Section, needMatch bool) {
	nameProp := sec.Property("name")
	if nameProp == nil || nameProp.Value.Kind != ScalarValue || strings.TrimSpace(nameProp.Value.Scalar) == "" {
		v.add(&Error{Line: sec.Line, Column: sec.Column, Section: sec.Kind, Message: "missing the 'name' property"})
		return
	}
	written := nameProp.Value.Scalar
	name := strings.TrimSpace(v.expand(written))
	ps := v.schema.Plugin(sec.Kind, name)
	if ps == nil {
		v.add(&Error{
			Line: nameProp.Line, Column: nameProp.Column, Section: sec.Kind, Plugin: written,
			Message:    "unknown plugin",
			Suggestion: v.suggest(name, v.schema.PluginNames(sec.Kind)),
		})
		return
	}
	counts := map[string]int{}
	for i := range sec.Properties {
		p := &sec.Properties[i]
		key := strings.ToLower(p.Key)
		if key == "name" {
			continue
		}
		if sec.Kind == KindInput && (key == "routes" || key == "telemetry") && p.Value.Kind == MapValue {
			if key == "telemetry" {
				v.telemetry(sec, p, false)
			}
			continue
		}
		if sec.Kind == KindInput && key == "telemetry" {
			v.add(&Error{Line: p.Line, Column: p.Column, Section: sec.Kind, Plugin: name, Property: p.Key, Message: "'telemetry' must be configured as a nested block"})
			continue
		}
		opt := ps.Option(key)
		if opt == nil && isCoreProperty(sec.Kind, strings.ToLower(name), key) {
			if typ, ok := coreTypes[key]; ok {
				for _, val := range p.Value.scalars() {
					if msg := checkType(typ, val.Scalar); msg != "" {
						v.add(&Error{Line: p.Line, Column: p.Column, Section: sec.Kind, Plugin: name, Property: p.Key, Message: msg})
					}
				}
			}
			continue
		}
		if opt == nil && !ps.hasOwnOptions {
			// Plugins without a config map of their own take any property, as in Fluent Bit.
			continue
		}
		if opt == nil {
			v.add(&Error{
				Line: p.Line, Column: p.Column, Section: sec.Kind, Plugin: name, Property: p.Key,
				Message:    "unknown configuration property",
				Suggestion: v.suggest(key, ps.names),
			})
			continue
		}
		if p.Value.Kind == MapValue || (p.Value.Kind == ListValue && len(p.Value.scalars()) != len(p.Value.List)) {
			if opt.Type != "variant" {
				v.add(&Error{Line: p.Line, Column: p.Column, Section: sec.Kind, Plugin: name, Property: p.Key, Message: "expects a plain value, not a nested structure"})
			}
			continue
		}
		for _, val := range p.Value.scalars() {
			msg := checkType(opt.Type, val.Scalar)
			if msg == "" {
				msg = checkEnum(sec.Kind, name, key, val.Scalar)
			}
			if msg != "" {
				v.add(&Error{Line: p.Line, Column: p.Column, Section: sec.Kind, Plugin: name, Property: p.Key, Message: msg})
			}
			counts[key]++
		}
		if scalarTypes[opt.Type] && counts[key] == 2 {
			v.add(&Error{Line: p.Line, Column: p.Column, Section: sec.Kind, Plugin: name, Property: p.Key, Message: "property is set more than once"})
		}
	}
	if len(sec.Groups) > 0 {
		g := sec.Groups[0]
		v.add(&Error{Line: g.Line, Section: sec.Kind, Plugin: name, Property: g.Name, Message: "could not configure group: plugins take no groups"})
	}
	if needMatch && sec.Property("match") == nil && sec.Property("match_regex") == nil {
		v.add(&Error{Line: sec.Line, Column: sec.Column, Section: sec.Kind, Plugin: name, Message: "no match rule: set match or match_regex"})
	}
	for _, set := range sec.Processors {
		for _, proc := range set.Plugins {
			v.plugin(proc, false)
		}
	}
}

func (v *validator) service(sec *Section) {
	for i := range sec.Properties {
		p := &sec.Properties[i]
		key := strings.ToLower(p.Key)
		if key == "telemetry" {
			if p.Value.Kind != MapValue {
				v.add(&Error{Line: p.Line, Column: p.Column, Section: KindService, Property: p.Key, Message: "'telemetry' must be configured as a nested block"})
				continue
			}
			v.telemetry(sec, p, true)
			continue
		}
		if p.Value.Kind == MapValue {
			v.add(&Error{Line: p.Line, Column: p.Column, Section: KindService, Property: p.Key, Message: "unsupported nested service property"})
			continue
		}
		for _, val := range p.Value.scalars() {
			msg := checkType(serviceTypes[key], val.Scalar)
			if msg == "" {
				msg = checkEnum(KindService, "", key, val.Scalar)
			}
			if msg != "" {
				v.add(&Error{Line: p.Line, Column: p.Column, Section: KindService, Property: p.Key, Message: msg})
			}
		}
	}
}

// telemetry checks the nested telemetry.metrics.logs.tag_records block, the only telemetry
// setting Fluent Bit has; max_series and max_tag_length are service-level only.
func (v *validator) telemetry(sec *Section, p *Property, service bool) {
	errAt := func(q *Property, path, msg string) {
		v.add(&Error{Line: q.Line, Column: q.Column, Section: sec.Kind, Plugin: nonService(sec), Property: path, Message: msg})
	}
	walk := func(q *Property, path string, allowed ...string) []*Property {
		if q.Value.Kind != MapValue {
			errAt(q, path, "must be a nested block")
			return nil
		}
		var out []*Property
		for i := range q.Value.Map {
			c := &q.Value.Map[i]
			ok := false
			for _, a := range allowed {
				if strings.EqualFold(c.Key, a) {
					ok = true
				}
			}
			if !ok {
				errAt(c, path+"."+c.Key, fmt.Sprintf("unknown %q option %q", path, c.Key))
				continue
			}
			out = append(out, c)
		}
		return out
	}
	for _, m := range walk(p, "telemetry", "metrics") {
		for _, l := range walk(m, "telemetry.metrics", "logs") {
			for _, tr := range walk(l, "telemetry.metrics.logs", "tag_records") {
				if tr.Value.Kind != MapValue {
					errAt(tr, "telemetry.metrics.logs.tag_records", "must be a map with an 'enabled' key")
					continue
				}
				for _, o := range walk(tr, "telemetry.metrics.logs.tag_records", "enabled", "max_series", "max_tag_length") {
					path := "telemetry.metrics.logs.tag_records." + o.Key
					typ := "integer"
					if strings.EqualFold(o.Key, "enabled") {
						typ = "boolean"
					} else if !service {
						errAt(o, path, "is service-level only")
						continue
					}
					if o.Value.Kind != ScalarValue {
						errAt(o, path, "expects a plain value")
					} else if msg := checkType(typ, o.Value.Scalar); msg != "" {
						errAt(o, path, msg)
					}
				}
			}
		}
	}
}

func nonService(sec *Section) string {
	if sec.Kind == KindService {
		return ""
	}
	return sec.Name()
}

// enums are string options whose accepted values Fluent Bit checks when the plugin starts, by
// "kind:plugin" ("*" for every plugin).
var enums = map[string]map[string][]string{
	"*": {
		"log_level":    {"off", "error", "warn", "warning", "info", "debug", "trace"},
		"storage.type": {"memory", "filesystem", "memrb"},
	},
	"service:": {
		"log_level":    {"off", "error", "warn", "warning", "info", "debug", "trace"},
		"storage.sync": {"normal", "full"},
	},
	"input:syslog": {"mode": {"unix_udp", "unix_tcp", "tcp", "udp"}},
}

func checkEnum(kind, plugin, key, value string) string {
	value = strings.TrimSpace(value)
	if strings.Contains(value, "${") || strings.Contains(value, "{{") {
		return ""
	}
	scopes := []string{"*", kind + ":" + strings.ToLower(plugin)}
	if kind == KindService {
		scopes = []string{"service:"}
	}
	for _, p := range scopes {
		allowed, ok := enums[p][key]
		if !ok {
			continue
		}
		for _, a := range allowed {
			if strings.EqualFold(a, value) {
				return ""
			}
		}
		return fmt.Sprintf("invalid value %q (one of %s)", value, strings.Join(allowed, ", "))
	}
	return ""
}

// checkType returns why value is not acceptable for an option type, or "". Values that Fluent Bit
// only knows after substitution (${ENV} variables, {{ template }} references) are not checked.
func checkType(typ, value string) string {
	value = strings.TrimSpace(value)
	if strings.Contains(value, "${") || strings.Contains(value, "{{") {
		return ""
	}
	switch typ {
	case "boolean":
		switch strings.ToLower(value) {
		case "on", "off", "true", "false", "yes", "no", "1", "0":
			return ""
		}
		return fmt.Sprintf("invalid boolean %q (use on/off, true/false)", value)
	case "integer":
		if _, err := strconv.ParseInt(value, 10, 64); err != nil {
			return fmt.Sprintf("invalid integer %q", value)
		}
	case "double":
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return fmt.Sprintf("invalid number %q", value)
		}
	case "size":
		if !sizeRe.MatchString(value) {
			return fmt.Sprintf("invalid size %q (e.g. 512K, 5M, 1G)", value)
		}
	case "time":
		if !timeRe.MatchString(value) {
			return fmt.Sprintf("invalid time %q (e.g. 10, 10s, 5m, 1h)", value)
		}
	}
	return ""
}
