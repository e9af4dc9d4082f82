package fluentbit

import (
	"fmt"
	"regexp"
	"strings"
)

// refRe matches `{{ secrets.NAME }}` and `{{ files.NAME }}` (blanks inside the braces optional).
var refRe = regexp.MustCompile(`\{\{\s*(secrets|files)\.([A-Za-z0-9_.\-]+)\s*\}\}`)

// Reference is one `{{ secrets.NAME }}` or `{{ files.NAME }}` occurrence.
type Reference struct {
	Kind string // "secrets" | "files"
	Name string
	Line int
}

// References lists every template reference in the config, in source order (one entry per
// occurrence).
func (c *Config) References() []Reference {
	var out []Reference
	walkValues(c, func(v *Value, line int) {
		for _, m := range refRe.FindAllStringSubmatch(v.Scalar, -1) {
			out = append(out, Reference{Kind: m[1], Name: m[2], Line: line})
		}
	})
	return out
}

// CheckReferences reports references that exist does not know of ("undefined pipeline secret").
func (c *Config) CheckReferences(exists func(Reference) bool) ErrorList {
	var errs ErrorList
	for _, r := range c.References() {
		if !exists(r) {
			errs = append(errs, &Error{Line: r.Line, Message: fmt.Sprintf("undefined pipeline %s %q", strings.TrimSuffix(r.Kind, "s"), r.Name)})
		}
	}
	return errs
}

// resolveReferences replaces every reference by its value. Values are never logged or put in
// errors: an error names only the reference.
func resolveReferences(c *Config, secrets, files map[string]string) ErrorList {
	var errs ErrorList
	walkValues(c, func(v *Value, line int) {
		if !strings.Contains(v.Scalar, "{{") {
			return
		}
		v.Scalar = refRe.ReplaceAllStringFunc(v.Scalar, func(ref string) string {
			m := refRe.FindStringSubmatch(ref)
			src := secrets
			if m[1] == "files" {
				src = files
			}
			val, ok := src[m[2]]
			if !ok {
				errs = append(errs, &Error{Line: line, Message: fmt.Sprintf("undefined pipeline %s %q", strings.TrimSuffix(m[1], "s"), m[2])})
				return ref
			}
			return val
		})
	})
	return errs
}

// walkValues calls fn for every scalar value in the config with the line of its property.
func walkValues(c *Config, fn func(v *Value, line int)) {
	var props func(ps []Property)
	var value func(v *Value, line int)
	value = func(v *Value, line int) {
		switch v.Kind {
		case ScalarValue:
			fn(v, line)
		case ListValue:
			for i := range v.List {
				l := v.List[i].Line
				if l == 0 {
					l = line
				}
				value(&v.List[i], l)
			}
		case MapValue:
			props(v.Map)
		}
	}
	props = func(ps []Property) {
		for i := range ps {
			value(&ps[i].Value, ps[i].Line)
		}
	}
	var section func(s *Section)
	section = func(s *Section) {
		props(s.Properties)
		for _, g := range s.Groups {
			props(g.Properties)
		}
		for _, set := range s.Processors {
			for _, p := range set.Plugins {
				section(p)
			}
		}
	}
	props(c.Env)
	for _, s := range c.Sections {
		section(s)
	}
}

// walkKeys calls fn for every key, section kind, group name, include path and signal name.
func walkKeys(c *Config, fn func(key string, line int)) {
	var props func(ps []Property)
	props = func(ps []Property) {
		for _, p := range ps {
			fn(p.Key, p.Line)
			var value func(v Value)
			value = func(v Value) {
				props(v.Map)
				for _, e := range v.List {
					value(e)
				}
			}
			value(p.Value)
		}
	}
	var section func(s *Section)
	section = func(s *Section) {
		fn(s.Kind, s.Line)
		props(s.Properties)
		for _, g := range s.Groups {
			fn(g.Name, g.Line)
			props(g.Properties)
		}
		for _, set := range s.Processors {
			fn(set.Signal, set.Line)
			for _, p := range set.Plugins {
				section(p)
			}
		}
	}
	props(c.Env)
	for _, in := range c.Includes {
		fn(in.Path, in.Line)
	}
	for _, s := range c.Sections {
		section(s)
	}
}
