package fluentbit

import (
	"fmt"
	"sort"
	"strings"
)

// ValidatePipeline checks pipeline-level rules that are policy rather than what Fluent Bit
// accepts: a pipeline needs at least one input and one output, and every output needs a match
// rule (Fluent Bit only warns about an output that matches nothing; it would receive no records),
// no two listening plugins may share a port and protocol, and inputs' routes only send to outputs
// that exist.
func ValidatePipeline(cfg *Config) ErrorList {
	var errs ErrorList
	hasRoutes := false
	for _, in := range cfg.Inputs() {
		if in.Property("routes") != nil {
			hasRoutes = true
		}
	}
	for _, out := range cfg.Outputs() {
		// With routing (inputs' `routes`) outputs are selected by the routes, not by match.
		if !hasRoutes && out.Property("match") == nil && out.Property("match_regex") == nil {
			errs = append(errs, &Error{Line: out.Line, Column: out.Column, Section: KindOutput, Plugin: out.Name(), Message: "no match rule: set match or match_regex"})
		}
	}
	// Each listening port becomes a Service port: two plugins cannot share a port and protocol.
	seen := map[string]Port{}
	for _, p := range cfg.Ports() {
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if prev, dup := seen[key]; dup {
			errs = append(errs, &Error{Line: p.Line, Section: p.Section, Plugin: p.Plugin, Property: "port",
				Message: fmt.Sprintf("port %s is already used by %s %q at line %d", key, prev.Section, prev.Plugin, prev.Line)})
			continue
		}
		seen[key] = p
	}
	errs = append(errs, checkRoutes(cfg)...)
	if len(cfg.Inputs()) == 0 {
		errs = append(errs, &Error{Section: KindInput, Message: "a pipeline needs at least one input"})
	}
	if len(cfg.Outputs()) == 0 {
		errs = append(errs, &Error{Section: KindOutput, Message: "a pipeline needs at least one output"})
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}

// checkRoutes checks that every output an input's `routes` sends to (by alias, name or instance
// name such as stdout.0) is defined.
func checkRoutes(cfg *Config) ErrorList {
	known := map[string]bool{}
	counts := map[string]int{}
	for _, out := range cfg.Outputs() {
		name := strings.ToLower(out.Name())
		known[name] = true
		known[fmt.Sprintf("%s.%d", name, counts[name])] = true
		counts[name]++
		if alias, ok := out.Get("alias"); ok {
			known[strings.ToLower(alias)] = true
		}
	}
	var errs ErrorList
	for _, in := range cfg.Inputs() {
		routes := in.Property("routes")
		if routes == nil || routes.Value.Kind != MapValue {
			continue
		}
		for _, signal := range routes.Value.Map {
			for _, route := range signal.Value.List {
				routeName := ""
				for _, p := range route.Map {
					if strings.EqualFold(p.Key, "name") {
						routeName = p.Value.Scalar
					}
				}
				for _, target := range routeTargets(route) {
					if target.Scalar == "" || strings.Contains(target.Scalar, "${") || known[strings.ToLower(target.Scalar)] {
						continue
					}
					errs = append(errs, &Error{Line: target.Line, Column: target.Column, Section: KindInput, Plugin: in.Name(), Property: "routes",
						Message: fmt.Sprintf("route %q sends to output %q, which is not defined", routeName, target.Scalar)})
				}
			}
		}
	}
	return errs
}

// routeTargets returns the outputs a route's `to.outputs` names (plain names or {name: ...}).
func routeTargets(route Value) []Value {
	var out []Value
	for _, p := range route.Map {
		if !strings.EqualFold(p.Key, "to") || p.Value.Kind != MapValue {
			continue
		}
		for _, to := range p.Value.Map {
			if !strings.EqualFold(to.Key, "outputs") {
				continue
			}
			targets := []Value{to.Value}
			if to.Value.Kind == ListValue {
				targets = to.Value.List
			}
			for _, t := range targets {
				switch t.Kind {
				case ScalarValue:
					out = append(out, t)
				case MapValue:
					for _, q := range t.Map {
						if strings.EqualFold(q.Key, "name") && q.Value.Kind == ScalarValue {
							out = append(out, q.Value)
						}
					}
				}
			}
		}
	}
	return out
}
