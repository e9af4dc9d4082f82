package fluentbit

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// kindOrder is the canonical order of section kinds: the two formats group sections differently
// (YAML lists inputs, filters and outputs under pipeline), but the order of sections of one kind
// is what Fluent Bit acts on, and it must survive.
var kindOrder = map[string]int{
	KindService: 0, KindInput: 1, KindFilter: 2, KindOutput: 3, KindParser: 4,
	KindMultilineParser: 5, KindCustom: 6, KindUpstream: 7, "node": 8, KindPlugins: 9,
}

// canonical renders a config's meaning as text: env, includes, then sections by kind in source
// order, each with its properties (a repeated key listed where it first appeared, as YAML must
// group repeated keys), groups and processors.
func canonical(cfg *Config) string {
	var b strings.Builder
	for _, e := range cfg.Env {
		fmt.Fprintf(&b, "env %s=%s\n", e.Key, canonValue(e.Value))
	}
	for _, in := range cfg.Includes {
		fmt.Fprintf(&b, "include %s\n", in.Path)
	}
	secs := append([]*Section(nil), cfg.Sections...)
	if svc := cfg.Service(); svc != nil {
		var rest []*Section
		for _, s := range secs {
			if s.Kind != KindService {
				rest = append(rest, s)
			}
		}
		secs = append([]*Section{svc}, rest...)
	}
	sort.SliceStable(secs, func(i, j int) bool {
		oi, ok := kindOrder[secs[i].Kind]
		if !ok {
			oi = 100
		}
		oj, ok := kindOrder[secs[j].Kind]
		if !ok {
			oj = 100
		}
		return oi < oj
	})
	var section func(indent string, s *Section)
	section = func(indent string, s *Section) {
		fmt.Fprintf(&b, "%s[%s]\n", indent, s.Kind)
		canonProps(&b, indent+"  ", s.Properties, s.Kind == KindMultilineParser)
		for _, g := range s.Groups {
			fmt.Fprintf(&b, "%s  group %s\n", indent, g.Name)
			canonProps(&b, indent+"    ", g.Properties, false)
		}
		for _, set := range s.Processors {
			fmt.Fprintf(&b, "%s  processors %s\n", indent, set.Signal)
			for _, p := range set.Plugins {
				section(indent+"    ", p)
			}
		}
	}
	for _, s := range secs {
		section("", s)
	}
	return b.String()
}

func canonProps(b *strings.Builder, indent string, ps []Property, multiline bool) {
	var keys []string
	vals := map[string][]string{}
	for _, p := range ps {
		k := strings.ToLower(p.Key)
		if multiline && (k == "rule" || k == "rules") {
			// A multiline parser's rules are `rule` lines in classic and a `rules` list in YAML.
			k = "rule"
			if _, seen := vals[k]; !seen {
				keys = append(keys, k)
			}
			rules := []Value{p.Value}
			if p.Value.Kind == ListValue {
				rules = p.Value.List
			}
			for _, r := range rules {
				if parsed, ok := ruleFromClassic(r.Scalar, 0); ok && r.Kind == ScalarValue {
					r = parsed
				}
				vals[k] = append(vals[k], canonValue(r))
			}
			continue
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		if p.Value.Kind == ListValue && len(p.Value.scalars()) == len(p.Value.List) {
			for _, v := range p.Value.List {
				vals[k] = append(vals[k], canonValue(v))
			}
			continue
		}
		vals[k] = append(vals[k], canonValue(p.Value))
	}
	for _, k := range keys {
		for _, v := range vals[k] {
			fmt.Fprintf(b, "%s%s = %s\n", indent, k, v)
		}
	}
}

func canonValue(v Value) string {
	switch v.Kind {
	case ListValue:
		parts := make([]string, len(v.List))
		for i, e := range v.List {
			parts[i] = canonValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case MapValue:
		parts := make([]string, len(v.Map))
		for i, p := range v.Map {
			parts[i] = p.Key + ": " + canonValue(p.Value)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("%q", v.Scalar)
}

// TestRoundTrip converts every corpus file that parses to the other format and back, and requires
// the same plugins, order and properties; files using what the other format cannot express
// (processors, nested values, multi-line values) must be refused by Convert, not mangled.
func TestRoundTrip(t *testing.T) {
	dir, rows := readCorpus(t)
	converted := map[Format]int{}
	refused := map[string]int{}
	for _, r := range rows {
		cfg, err := Parse(readCorpusFile(t, dir, r), r.Format)
		if err != nil {
			continue
		}
		other := FormatYAML
		if r.Format == FormatYAML {
			other = FormatClassic
		}
		mid, err := Convert(cfg, other)
		if err != nil {
			el, ok := err.(ErrorList)
			if !ok || len(el) == 0 {
				t.Errorf("%s: Convert to %s failed without an ErrorList: %v", r.File, other, err)
				continue
			}
			refused[el[0].Message]++
			continue
		}
		midCfg, err := Parse(mid, other)
		if err != nil {
			t.Errorf("%s: converted %s does not parse: %v\n%s", r.File, other, err, mid)
			continue
		}
		back, err := Convert(midCfg, r.Format)
		if err != nil {
			t.Errorf("%s: converting back to %s failed: %v", r.File, r.Format, err)
			continue
		}
		backCfg, err := Parse(back, r.Format)
		if err != nil {
			t.Errorf("%s: round-tripped %s does not parse: %v\n%s", r.File, r.Format, err, back)
			continue
		}
		if want, got := canonical(cfg), canonical(backCfg); want != got {
			t.Errorf("%s: %s -> %s -> %s changed the config:\nwant:\n%s\ngot:\n%s", r.File, r.Format, other, r.Format, want, got)
			continue
		}
		if want, got := canonical(cfg), canonical(midCfg); want != got && !strings.Contains(want, "rule = ") && !strings.Contains(want, "rules = ") && !strings.Contains(want, "[upstream]") {
			// Rules and upstream nodes are spelled differently in the two formats; the full
			// round trip above covers them.
			t.Errorf("%s: %s -> %s changed the config:\nwant:\n%s\ngot:\n%s", r.File, r.Format, other, want, got)
			continue
		}
		converted[r.Format]++
	}
	t.Logf("round trips: %d classic -> YAML -> classic, %d YAML -> classic -> YAML; refused as not convertible: %v",
		converted[FormatClassic], converted[FormatYAML], refused)
	if converted[FormatClassic] < 300 || converted[FormatYAML] < 300 {
		t.Errorf("too few round trips: %v", converted)
	}
}

// awkwardConfigs hold what one format can say and the other cannot, or only differently. Convert
// must either refuse them or round-trip them unchanged; they also seed FuzzConvert.
var awkwardConfigs = []struct {
	format Format
	src    string
}{
	{FormatYAML, "pipeline:\n  inputs:\n    - name: dummy\n      '#x': 1\n"},
	{FormatYAML, "pipeline:\n  inputs:\n    - name: dummy\n      '[x]': 1\n"},
	{FormatYAML, "pipeline:\n  inputs:\n    - name: dummy\n      '@x': 1\n"},
	{FormatYAML, "pipeline:\n  inputs:\n    - name: dummy\n      'a b': 1\n"},
	{FormatYAML, "pipeline:\n  inputs:\n    - name: dummy\n      v: ''\n"},
	{FormatYAML, "pipeline:\n  inputs:\n    - name: dummy\n      v: ' padded'\n"},
	{FormatYAML, "env:\n  'a=b': c\n"},
	{FormatYAML, "env:\n  'a b': c\n"},
	{FormatYAML, "includes:\n  - 'a b'\n"},
	{FormatYAML, "includes:\n  - ''\n"},
	{FormatYAML, "service:\n  flush: '#1'\n"},
	{FormatYAML, "custom_info:\n  a: 1\n"},
	{FormatYAML, "'[odd]':\n  a: 1\n"},
	{FormatYAML, "'odd]':\n  a: 1\n"},
	{FormatYAML, "multiline_parsers:\n  - name: x\n    rules:\n      - state: a\n        regex: b\n        next_state: c\n    rule: '\"a\"   \"b\" \"c\"'\n"},
	{FormatYAML, "plugins:\n  - /a.so\n"},
	{FormatYAML, "upstream_servers:\n  - name: u\n    nodes:\n      - name: n1\n        host: h\n"},
	{FormatYAML, "pipeline:\n  outputs:\n    - name: stdout\n      match: '*'\n      format: \"line1\\nline2\"\n"},
	{FormatClassic, "[INPUT]\n    name dummy\n    key: value\n"},
	{FormatClassic, "[INPUT]\n    name dummy\n    - item\n"},
	{FormatClassic, "[INPUT]\n    name dummy\n    k *\n    k &anchor\n    k !tag\n    k 'quoted'\n    k \"dq\"\n    k {a: 1}\n    k ~\n    k null\n    k 0x1F\n"},
	{FormatClassic, "[MULTILINE_PARSER]\n    name x\n    rule \"start_state\" \"/a\\\"b/\" \"cont\"\n    rule broken\n"},
	{FormatClassic, "[UPSTREAM]\n    name u\n[NODE]\n    name n1\n[NODE]\n    name n2\n"},
	{FormatClassic, "[NODE]\n    name orphan\n"},
	{FormatClassic, "[INPUT]\n    name tail\n    [GROUP g]\n        a 1\n"},
	{FormatClassic, "[SERVICE]\n    flush 1\n[SERVICE]\n    grace 2\n"},
	{FormatClassic, "[X]\n    a 1\n[X]\n    b 2\n"},
}

func TestConvertAwkward(t *testing.T) {
	for _, tc := range awkwardConfigs {
		t.Run(tc.src, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			other := FormatYAML
			if tc.format == FormatYAML {
				other = FormatClassic
			}
			out, err := Convert(cfg, other)
			if err != nil {
				var el ErrorList
				if el, _ = err.(ErrorList); len(el) == 0 || el[0].Line == 0 {
					t.Fatalf("refusal without a positioned ErrorList: %v", err)
				}
				return
			}
			mid, err := Parse(out, other)
			if err != nil {
				t.Fatalf("converted %s does not parse: %v\n%s", other, err, out)
			}
			back, err := Convert(mid, tc.format)
			if err != nil {
				t.Fatalf("converting back failed: %v", err)
			}
			again, err := Parse(back, tc.format)
			if err != nil {
				t.Fatalf("round-tripped %s does not parse: %v\n%s", tc.format, err, back)
			}
			if want, got := canonical(cfg), canonical(again); want != got {
				t.Fatalf("round trip changed the config:\nwant\n%s\ngot\n%s\nvia\n%s", want, got, out)
			}
		})
	}
}
