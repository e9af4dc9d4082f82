package fluentbit

import (
	"fmt"
	"sort"
)

// ValidatePipeline checks pipeline-level rules that are policy rather than what Fluent Bit
// accepts: a pipeline needs at least one input and one output, and every output needs a match
// rule (Fluent Bit only warns about an output that matches nothing; it would receive no records),
// and no two listening plugins may share a port and protocol.
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
	if len(cfg.Inputs()) == 0 {
		errs = append(errs, &Error{Section: KindInput, Message: "a pipeline needs at least one input"})
	}
	if len(cfg.Outputs()) == 0 {
		errs = append(errs, &Error{Section: KindOutput, Message: "a pipeline needs at least one output"})
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}
