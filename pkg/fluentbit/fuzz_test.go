package fluentbit

import (
	"fmt"
	"strings"
	"testing"
)

// addCorpusSeeds seeds a fuzz target with every corpus file of a format.
func addCorpusSeeds(f *testing.F, format Format, withFormat bool) {
	dir, rows := readCorpus(f)
	for _, r := range rows {
		if r.Format != format {
			continue
		}
		src := readCorpusFile(f, dir, r)
		if withFormat {
			f.Add(src, format == FormatYAML)
		} else {
			f.Add(src)
		}
	}
}

// exercise runs everything that takes a parsed config; none of it may panic.
func exercise(t *testing.T, cfg *Config) {
	for _, v := range []string{DefaultSchemaVersion, UpstreamSchemaVersion} {
		s, err := LoadSchema(v)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Validate(cfg)
	}
	_ = ValidatePipeline(cfg)
	_ = cfg.References()
	_ = cfg.Ports()
	yes := true
	_, _ = Render(cfg, FormatYAML, RenderOptions{Storage: &StorageSettings{Path: "/s", SyncFull: &yes, InputStorageType: "filesystem"}})
}

func FuzzParseClassic(f *testing.F) {
	addCorpusSeeds(f, FormatClassic, false)
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse(src, FormatClassic)
		if err != nil {
			if _, ok := err.(ErrorList); !ok {
				t.Fatalf("Parse error is not an ErrorList: %T %v", err, err)
			}
			return
		}
		exercise(t, cfg)
	})
}

func FuzzParseYAML(f *testing.F) {
	addCorpusSeeds(f, FormatYAML, false)
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse(src, FormatYAML)
		if err != nil {
			if _, ok := err.(ErrorList); !ok {
				t.Fatalf("Parse error is not an ErrorList: %T %v", err, err)
			}
			return
		}
		exercise(t, cfg)
	})
}

// FuzzConvert requires that whatever Convert writes parses again and, converted back, means the
// same as the input.
func FuzzConvert(f *testing.F) {
	addCorpusSeeds(f, FormatClassic, true)
	addCorpusSeeds(f, FormatYAML, true)
	for _, a := range awkwardConfigs {
		f.Add([]byte(a.src), a.format == FormatYAML)
	}
	f.Fuzz(func(t *testing.T, src []byte, isYAML bool) {
		from := FormatClassic
		if isYAML {
			from = FormatYAML
		}
		cfg, err := Parse(src, from)
		if err != nil {
			return
		}
		for _, to := range []Format{FormatClassic, FormatYAML} {
			out, err := Convert(cfg, to)
			if err != nil {
				if _, ok := err.(ErrorList); !ok {
					t.Fatalf("Convert error is not an ErrorList: %T %v", err, err)
				}
				continue
			}
			again, err := Parse(out, to)
			if err != nil {
				t.Fatalf("Convert %s -> %s wrote what does not parse: %v\ninput:\n%q\noutput:\n%q", from, to, err, src, out)
			}
			if to != from {
				// And back: the round trip must keep plugins, order and properties.
				back, err := Convert(again, from)
				if err != nil {
					t.Fatalf("Convert %s -> %s -> %s failed on the way back: %v\ninput:\n%q\nmiddle:\n%q", from, to, from, err, src, out)
				}
				if again, err = Parse(back, from); err != nil {
					t.Fatalf("Convert %s -> %s -> %s wrote what does not parse: %v\ninput:\n%q\noutput:\n%q", from, to, from, err, src, back)
				}
				out = back
			}
			if want, got := canonical(cfg), canonical(again); want != got {
				t.Fatalf("Convert from %s via %s changed the config:\ninput:\n%q\noutput:\n%q\nwant:\n%s\ngot:\n%s", from, to, src, out, want, got)
			}
		}
	})
}

// TestHostileInput feeds inputs built to blow up naive parsers; each must end with an error or
// a bounded result (go test's timeout catches a hang).
func TestHostileInput(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := 0; i < 12; i++ {
		name := string(rune('b' + i))
		laughs += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	deep := ""
	for i := 0; i < 5000; i++ {
		deep += "["
	}
	var manyUnknown strings.Builder
	manyUnknown.WriteString("[INPUT]\n    name tail\n")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&manyUnknown, "    unknown_property_%d value\n", i)
	}
	tests := []struct {
		name      string
		format    Format
		src       string
		wantParse string // substring of the parse error, "" when it parses
	}{
		{"billion laughs in a section", FormatYAML, "service:\n  " + strings.ReplaceAll(strings.TrimSpace(laughs), "\n", "\n  ") + "\n", "too many values"},
		{"billion laughs in a plugin", FormatYAML, "pipeline:\n  inputs:\n    - name: dummy\n      v: " + laughsValue(), "too many values"},
		{"deep flow nesting", FormatYAML, "a: " + deep, "invalid YAML"},
		{"long line", FormatClassic, "[INPUT]\n    name " + strings.Repeat("x", 1<<20) + "\n", ""},
		{"many unknown properties", FormatClassic, manyUnknown.String(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), tc.format)
			if tc.wantParse != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantParse) {
					t.Fatalf("Parse error = %v, want %q", err, tc.wantParse)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse error = %v", err)
			}
			errs := mustSchema(t, UpstreamSchemaVersion).Validate(cfg)
			if len(errs) == 0 {
				t.Fatal("Validate accepted a hostile config")
			}
			_, _ = Convert(cfg, FormatYAML)
		})
	}
}

// laughsValue is a flow sequence whose aliases expand to 10^6 values.
func laughsValue() string {
	v := "&l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"
	for i := 1; i <= 6; i++ {
		ref := fmt.Sprintf("*l%d", i-1)
		v = fmt.Sprintf("[%s, &l%d [%s]]", v, i, strings.TrimSuffix(strings.Repeat(ref+", ", 10), ", "))
	}
	return v + "\n"
}
