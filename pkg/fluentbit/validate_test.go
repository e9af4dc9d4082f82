package fluentbit

import (
	"errors"
	"strings"
	"testing"
)

func mustSchema(t testing.TB, version string) *Schema {
	t.Helper()
	s, err := LoadSchema(version)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadSchema(t *testing.T) {
	for _, v := range []string{DefaultSchemaVersion, UpstreamSchemaVersion} {
		a, b := mustSchema(t, v), mustSchema(t, v)
		if a != b {
			t.Errorf("LoadSchema(%q) is not cached", v)
		}
		if a.Version != v || a.Plugin(KindInput, "tail") == nil || a.Plugin(KindOutput, "stdout") == nil {
			t.Errorf("schema %q: version %q, tail and stdout must exist", v, a.Version)
		}
	}
	if _, err := LoadSchema("1.0.0"); err == nil || !strings.Contains(err.Error(), DefaultSchemaVersion) {
		t.Errorf("LoadSchema(1.0.0) = %v, want an error listing the versions", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		version string
		format  Format
		src     string
		want    []string // Error() of each error, in order
	}{
		{
			name:   "valid classic pipeline",
			format: FormatClassic,
			src:    "[SERVICE]\n    flush 1\n    http_server on\n[INPUT]\n    name tail\n    path /var/log/*.log\n    read_from_head true\n    buffer_chunk_size 512K\n    rotate_wait 5s\n[FILTER]\n    name grep\n    match *\n    regex log error\n[OUTPUT]\n    name s3\n    match *\n    bucket b\n    total_file_size 5M\n",
		},
		{
			name:   "unknown output plugin with suggestion",
			format: FormatClassic,
			src:    "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name s4\n    match *\n",
			want:   []string{`line 5: output "s4": unknown plugin (did you mean "s3"?)`},
		},
		{
			name:   "unknown plugin without a close name",
			format: FormatClassic,
			src:    "[INPUT]\n    name zzzzzzzzzz\n",
			want:   []string{`line 2: input "zzzzzzzzzz": unknown plugin`},
		},
		{
			name:   "unknown property with suggestion",
			format: FormatYAML,
			src:    "pipeline:\n  outputs:\n    - name: s3\n      match: '*'\n      buckett: logs\n",
			want:   []string{`line 5: output "s3": property "buckett": unknown configuration property (did you mean "bucket"?)`},
		},
		{
			name:   "typed values",
			format: FormatClassic,
			src:    "[INPUT]\n    name tail\n    path /x\n    read_from_head maybe\n    buffer_chunk_size 5X\n    rotate_wait soon\n    docker_mode_flush 1.5\n    port abc\n",
			want: []string{
				`line 4: input "tail": property "read_from_head": invalid boolean "maybe" (use on/off, true/false)`,
				`line 5: input "tail": property "buffer_chunk_size": invalid size "5X" (e.g. 512K, 5M, 1G)`,
				`line 6: input "tail": property "rotate_wait": invalid time "soon" (e.g. 10, 10s, 5m, 1h)`,
				`line 7: input "tail": property "docker_mode_flush": invalid integer "1.5"`,
				`line 8: input "tail": property "port": invalid integer "abc"`,
			},
		},
		{
			name:   "variables and templates are not type-checked",
			format: FormatClassic,
			src:    "[INPUT]\n    name tail\n    path /x\n    read_from_head ${FROM_HEAD}\n    buffer_chunk_size {{ secrets.size }}\n",
		},
		{
			name:   "scalar property set twice",
			format: FormatClassic,
			src:    "[INPUT]\n    name proc\n    alert true\n    alert false\n",
			want:   []string{`line 4: input "proc": property "alert": property is set more than once`},
		},
		{
			name:   "list properties may repeat",
			format: FormatYAML,
			src:    "pipeline:\n  filters:\n    - name: modify\n      match: '*'\n      add:\n        - a 1\n        - b 2\n",
		},
		{
			name:   "filter needs a match rule",
			format: FormatClassic,
			src:    "[FILTER]\n    name grep\n    regex log x\n",
			want:   []string{`line 1: filter "grep": no match rule: set match or match_regex`},
		},
		{
			name:   "missing name",
			format: FormatClassic,
			src:    "[OUTPUT]\n    match *\n",
			want:   []string{`line 1: output: missing the 'name' property`},
		},
		{
			name:   "log level and syslog mode",
			format: FormatClassic,
			src:    "[INPUT]\n    name syslog\n    mode abc\n    log_level loud\n",
			want: []string{
				`line 3: input "syslog": property "mode": invalid value "abc" (one of unix_udp, unix_tcp, tcp, udp)`,
				`line 4: input "syslog": property "log_level": invalid value "loud" (one of off, error, warn, warning, info, debug, trace)`,
			},
		},
		{
			name:   "storage settings",
			format: FormatClassic,
			src:    "[SERVICE]\n    storage.sync fast\n    log_level verbose\n[INPUT]\n    name dummy\n    storage.type disk\n",
			want: []string{
				`line 2: service: property "storage.sync": invalid value "fast" (one of normal, full)`,
				`line 3: service: property "log_level": invalid value "verbose" (one of off, error, warn, warning, info, debug, trace)`,
				`line 6: input "dummy": property "storage.type": invalid value "disk" (one of memory, filesystem, memrb)`,
			},
		},
		{
			name:   "plugin name from @SET",
			format: FormatClassic,
			src:    "@SET out=stdout\n[OUTPUT]\n    name ${out}\n    match *\n",
		},
		{
			name:   "processors are validated",
			format: FormatYAML,
			src:    "pipeline:\n  inputs:\n    - name: dummy\n      processors:\n        logs:\n          - name: content_modifer\n          - name: content_modifier\n            action: insert\n            kye: a\n",
			want: []string{
				`line 6: processor "content_modifer": unknown plugin (did you mean "content_modifier"?)`,
				`line 9: processor "content_modifier": property "kye": unknown configuration property (did you mean "key"?)`,
			},
		},
		{
			name:    "the calyptia processor exists in Core's Fluent Bit",
			version: DefaultSchemaVersion,
			format:  FormatYAML,
			src:     "pipeline:\n  inputs:\n    - name: dummy\n      processors:\n        logs:\n          - name: calyptia\n",
		},
		{
			name:    "but not upstream",
			version: UpstreamSchemaVersion,
			format:  FormatYAML,
			src:     "pipeline:\n  inputs:\n    - name: dummy\n      processors:\n        logs:\n          - name: calyptia\n",
			want:    []string{`line 6: processor "calyptia": unknown plugin`},
		},
		{
			name:   "service types and nested settings",
			format: FormatYAML,
			src:    "service:\n  flush: soon\n  http_server: maybe\n  bogus:\n    nested: 1\n  telemetry:\n    metrics:\n      logs:\n        tag_records:\n          enabled: true\n          max_serie: 5\n",
			want: []string{
				`line 2: service: property "flush": invalid number "soon"`,
				`line 3: service: property "http_server": invalid boolean "maybe" (use on/off, true/false)`,
				`line 4: service: property "bogus": unsupported nested service property`,
				`line 11: service: property "telemetry.metrics.logs.tag_records.max_serie": unknown "telemetry.metrics.logs.tag_records" option "max_serie"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			version := tc.version
			if version == "" {
				version = UpstreamSchemaVersion
			}
			cfg, err := Parse([]byte(tc.src), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			errs := mustSchema(t, version).Validate(cfg)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("Validate() =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestValidateErrorPositions(t *testing.T) {
	cfg, err := Parse([]byte("pipeline:\n  inputs:\n    - name: tail\n      path: /x\n      bogus_key: 1\n"), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	errs := mustSchema(t, DefaultSchemaVersion).Validate(cfg)
	if len(errs) != 1 {
		t.Fatalf("errors = %v", errs)
	}
	e := errs[0]
	if e.Line != 5 || e.Column != 7 || e.Section != "input" || e.Plugin != "tail" || e.Property != "bogus_key" {
		t.Fatalf("error = %+v, want line 5 column 7 input tail bogus_key", e)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		src    string
		line   int
		msg    string
	}{
		{"value without a key", FormatClassic, "[INPUT]\n    name\n", 2, "undefined value"},
		{"entry outside a section", FormatClassic, "name tail\n", 1, "outside of any section"},
		{"unindented entry", FormatClassic, "[INPUT]\nname tail\n", 2, "invalid indentation level"},
		{"indentation changes", FormatClassic, "[INPUT]\n    name dummy\n\n[OUTPUT]\n      name stdout\n", 5, "extra indentation level found"},
		{"less indentation", FormatClassic, "[INPUT]\n    name dummy\n  tag x\n", 3, "invalid indentation level"},
		{"bad header", FormatClassic, "[INPUT\n    name dummy\n", 1, "invalid section header"},
		{"malformed @SET", FormatClassic, "@SET ${A}=1\n", 1, "@SET needs KEY=VALUE"},
		{"@INCLUDE twice", FormatClassic, "@INCLUDE a.conf\n@INCLUDE a.conf\n", 2, "included more than once"},
		{"@INCLUDE two paths", FormatClassic, "@INCLUDE a.conf b.conf\n", 1, "exactly one file path"},
		{"unknown directive", FormatClassic, "@FOO bar\n", 1, "unknown directive"},
		{"YAML syntax", FormatYAML, "service:\n  flush: 1\npipeline:\n\t- name: dummy\n", 4, "invalid YAML"},
		{"YAML pipeline section is a map", FormatYAML, "pipeline:\n  inputs:\n    tail:\n      path: /x\n", 3, "pipeline.inputs must be a list"},
		{"YAML unknown pipeline key", FormatYAML, "pipeline:\n  input:\n    - name: tail\n", 2, "unknown pipeline key"},
		{"YAML nested other section", FormatYAML, "custom_info:\n  nested:\n    key: value\n", 3, "must have a plain value"},
		{"YAML not a mapping", FormatYAML, "- a\n- b\n", 1, "must be a YAML mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), tc.format)
			var el ErrorList
			if !errors.As(err, &el) || len(el) == 0 {
				t.Fatalf("Parse() error = %v, want an ErrorList", err)
			}
			if el[0].Line != tc.line || !strings.Contains(el[0].Message, tc.msg) {
				t.Fatalf("Parse() error = %+v, want line %d containing %q", el[0], tc.line, tc.msg)
			}
		})
	}
	if _, err := Parse(nil, Format("toml")); err == nil {
		t.Fatal("Parse with an unknown format succeeded")
	}
}

func TestParseClassicStructure(t *testing.T) {
	src := "# comment\n@SET env=prod\n@INCLUDE extra.conf\n[SERVICE]\n\tflush 1\n[INPUT]\n\tName  tail\n\t# indented comment\n\tPath  /var/log/a.log\n\n\t[GROUP one]\n\t\tkey value with spaces\n\tTag   t\n[FILTER]\n\tName modify\n\tMatch *\n\tAdd a 1\n\tAdd b 2\n"
	cfg, err := Parse([]byte(src), FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Env) != 1 || cfg.Env[0].Key != "env" || cfg.Env[0].Value.Scalar != "prod" {
		t.Errorf("env = %+v", cfg.Env)
	}
	if len(cfg.Includes) != 1 || cfg.Includes[0].Path != "extra.conf" || cfg.Includes[0].Line != 3 {
		t.Errorf("includes = %+v", cfg.Includes)
	}
	in := cfg.Inputs()
	if len(in) != 1 || in[0].Name() != "tail" || in[0].Line != 6 {
		t.Fatalf("inputs = %+v", in)
	}
	if v, _ := in[0].Get("tag"); v != "t" {
		t.Errorf("tag = %q (an entry after a group belongs to the section)", v)
	}
	if len(in[0].Groups) != 1 || in[0].Groups[0].Name != "GROUP one" || in[0].Groups[0].Properties[0].Value.Scalar != "value with spaces" {
		t.Errorf("groups = %+v", in[0].Groups)
	}
	f := cfg.Filters()[0]
	if len(f.Properties) != 4 || f.Properties[2].Value.Scalar != "a 1" || f.Properties[3].Value.Scalar != "b 2" {
		t.Errorf("repeated keys = %+v", f.Properties)
	}
}

func TestValidatePipeline(t *testing.T) {
	routed := "pipeline:\n  inputs:\n    - name: dummy\n      routes:\n        logs:\n          - name: errors\n            condition: {default: true}\n            to:\n              outputs:\n                - err_out\n                - name: stdout.1\n                - missing\n  outputs:\n    - name: stdout\n      alias: err_out\n    - name: stdout\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"complete", "[INPUT]\n    name dummy\n[OUTPUT]\n    name stdout\n    match *\n", nil},
		{"empty", "", []string{"input: a pipeline needs at least one input", "output: a pipeline needs at least one output"}},
		{"output without match", "[INPUT]\n    name dummy\n[OUTPUT]\n    name stdout\n", []string{`line 3: output "stdout": no match rule: set match or match_regex`}},
		{"port collision", "[INPUT]\n    name tcp\n[INPUT]\n    name http\n    port 5170\n[OUTPUT]\n    name stdout\n    match *\n",
			[]string{`line 5: input "http": property "port": port 5170/TCP is already used by input "tcp" at line 1`}},
		{"same port different protocols", "[INPUT]\n    name tcp\n[INPUT]\n    name udp\n[OUTPUT]\n    name stdout\n    match *\n", nil},
		{"routes to outputs by alias, instance name, or missing", routed,
			[]string{`line 12: input "dummy": property "routes": route "errors" sends to output "missing", which is not defined`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			format := FormatClassic
			if strings.HasPrefix(tc.src, "pipeline:") {
				format = FormatYAML
			}
			cfg, err := Parse([]byte(tc.src), format)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ValidatePipeline(cfg) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("ValidatePipeline() =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestErrorList(t *testing.T) {
	var none ErrorList
	if none.Err() != nil {
		t.Fatal("empty ErrorList.Err() is not nil")
	}
	l := ErrorList{{Line: 1, Message: "a"}, {Line: 2, Section: "input", Plugin: "x", Message: "b", Suggestion: "y"}}
	if got := l.Error(); got != `line 1: a; line 2: input "x": b (did you mean "y"?)` {
		t.Fatalf("Error() = %q", got)
	}
}

// TestYAMLSlashEscape: libyaml (Fluent Bit) accepts the JSON escape `\/` in double-quoted
// strings; other scalars keep their backslashes.
func TestYAMLSlashEscape(t *testing.T) {
	src := "pipeline:\n  inputs:\n    - name: dummy\n      a: \"\\/sensitive-.*\"\n      b: '\\/kept'\n      c: plain\\/kept # it's \"\\/\"\n      d: it's \"\\/kept\"\n"
	cfg, err := Parse([]byte(src), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Inputs()[0]
	for key, want := range map[string]string{"a": "/sensitive-.*", "b": `\/kept`, "c": `plain\/kept`, "d": `it's "\/kept"`} {
		if got, _ := in.Get(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if _, err := Parse([]byte("a: \"\\q\"\n"), FormatYAML); err == nil {
		t.Error("other unknown escapes must stay errors")
	}
}
