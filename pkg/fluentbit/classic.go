package fluentbit

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// setKeyRe is what @SET accepts as a variable name; `@SET ${A}=1` is a mistake, not a variable.
var setKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)

// parseClassic parses the classic format the way Fluent Bit's flb_cf_fluentbit.c does: `#` lines
// are comments (there are no trailing comments), `[NAME]` at column 0 opens a section, entries are
// `key value` split at the first blank and indented by one indentation unit that is fixed by the
// first indented line of the file, and `[GROUP name]` at that indentation opens a nested group
// whose entries use two units.
func parseClassic(src []byte) (*Config, error) {
	cfg := &Config{Format: FormatClassic}
	var errs ErrorList
	fail := func(line, col int, format string, args ...any) {
		errs = append(errs, &Error{Line: line, Column: col, Message: fmt.Sprintf(format, args...)})
	}
	var (
		cur      *Section
		group    *Group
		unit     string // the indentation unit, set by the first indented entry
		included = map[string]bool{}
	)
	lineNo := 0
	for len(src) > 0 {
		lineNo++
		var raw []byte
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			raw, src = src[:i], src[i+1:]
		} else {
			raw, src = src, nil
		}
		line := strings.TrimRight(string(raw), " \t\r")
		content := strings.TrimLeft(line, " \t")
		if content == "" || content[0] == '#' {
			continue
		}
		indent := line[:len(line)-len(content)]

		if indent == "" && content[0] == '@' {
			cur, group = nil, nil
			directive, arg, _ := strings.Cut(content, " ")
			arg = strings.TrimSpace(arg)
			switch strings.ToUpper(directive) {
			case "@INCLUDE":
				if arg == "" || strings.ContainsAny(arg, " \t") {
					fail(lineNo, 1, "@INCLUDE takes exactly one file path")
					continue
				}
				if included[arg] {
					fail(lineNo, 1, "file %q is included more than once", arg)
					continue
				}
				included[arg] = true
				cfg.Includes = append(cfg.Includes, Include{Path: arg, Line: lineNo})
			case "@SET":
				key, val, ok := strings.Cut(arg, "=")
				key, val = strings.TrimSpace(key), strings.TrimSpace(val)
				if !ok || !setKeyRe.MatchString(key) {
					fail(lineNo, 1, "@SET needs KEY=VALUE with a plain variable name")
					continue
				}
				cfg.Env = append(cfg.Env, Property{Key: key, Value: Value{Scalar: val, Line: lineNo, Column: len(directive) + 2}, Line: lineNo, Column: len(directive) + 2})
			default:
				fail(lineNo, 1, "unknown directive %q", directive)
			}
			continue
		}

		if content[0] == '[' {
			end := strings.IndexByte(content, ']')
			if end < 0 || end != len(content)-1 {
				fail(lineNo, len(indent)+1, "invalid section header %q", content)
				continue
			}
			name := strings.TrimSpace(content[1:end])
			if name == "" {
				fail(lineNo, len(indent)+1, "empty section name")
				continue
			}
			// Brackets inside a name, or letters whose case does not round
			// trip, make a header no writer can reproduce.
			if lower := strings.ToLower(name); !classicNameRe.MatchString(name) || strings.ToLower(strings.ToUpper(lower)) != lower {
				fail(lineNo, len(indent)+1, "invalid section header %q", content)
				continue
			}
			if indent == "" {
				cur = &Section{Kind: strings.ToLower(name), Line: lineNo, Column: 1}
				group = nil
				cfg.Sections = append(cfg.Sections, cur)
				continue
			}
			if cur == nil {
				fail(lineNo, len(indent)+1, "undefined value - check config is in valid classic format")
				continue
			}
			if unit == "" {
				unit = indent
			}
			if indent != unit {
				fail(lineNo, len(indent)+1, "invalid indentation level")
				continue
			}
			group = &Group{Name: name, Line: lineNo}
			cur.Groups = append(cur.Groups, group)
			continue
		}

		key, val := splitEntry(content)
		if val == "" {
			fail(lineNo, len(indent)+1, "undefined value - check config is in valid classic format")
			continue
		}
		if cur == nil {
			fail(lineNo, len(indent)+1, "key/value pair %q outside of any section", key)
			continue
		}
		if indent == "" {
			fail(lineNo, 1, "invalid indentation level: entries must be indented")
			continue
		}
		if unit == "" {
			unit = indent
		}
		prop := Property{
			Key:    key,
			Value:  Value{Kind: ScalarValue, Scalar: val, Line: lineNo, Column: len(line) - len(strings.TrimLeft(line[len(indent)+len(key):], " \t")) + 1},
			Line:   lineNo,
			Column: len(indent) + 1,
		}
		switch {
		case indent == unit:
			group = nil
			cur.Properties = append(cur.Properties, prop)
		case group != nil && indent == unit+unit:
			group.Properties = append(group.Properties, prop)
		case strings.HasPrefix(indent, unit):
			fail(lineNo, len(indent)+1, "extra indentation level found")
		default:
			fail(lineNo, len(indent)+1, "invalid indentation level")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// splitEntry splits `key   value with blanks` at the first run of blanks.
func splitEntry(content string) (key, val string) {
	i := strings.IndexAny(content, " \t")
	if i < 0 {
		return content, ""
	}
	return content[:i], strings.TrimSpace(content[i:])
}
