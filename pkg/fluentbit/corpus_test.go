package fluentbit

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// expectation is what Fluent Bit 5.1.1's dry run says about a corpus file, in terms of our errors.
type expectation struct {
	// kind: "pass", or the config reason it failed for: "property" (unknown property), "plugin"
	// (plugin doesn't exist), "match" (no match rule), "duplicate" (property set twice),
	// "syntax", "name" (missing name), "value" (a property Fluent Bit could not set).
	kind     string
	plugin   string
	property string
}

var (
	reUnknownProp = regexp.MustCompile(`\[config\] (\S+): unknown configuration property '([^']+)'`)
	reNoPlugin    = regexp.MustCompile(`section '([^']*)' tried to instance a plugin name that doesn't exist`)
	reNoProcessor = regexp.MustCompile(`error creating processor '([^']+)': plugin doesn't exist`)
	reNoMatch     = regexp.MustCompile(`NO match rule for (\S+?)\.\d+ `)
	reDuplicate   = regexp.MustCompile(`\[config\] (\S+): configuration property '([^']+)' is set \d+ times`)
	reSyntax      = regexp.MustCompile(`invalid YAML|YAML error found|undefined value|could not allocate key value pair|invalid indentation level|extra indentation level`)
	reNoName      = regexp.MustCompile(`section '[^']*' is missing the 'name' property`)
	reCannotSet   = regexp.MustCompile(`could not configure property '([^']+)' on \S+ plugin with section name '([^']+)'`)
	// Telemetry and nested service settings: the last quoted name is the offending option.
	reTelemetry = regexp.MustCompile(`'(telemetry[^']*)'|unsupported nested service property '([^']+)'|unknown '[^']+' option '([^']+)'`)
)

// environmental maps a fragment of Fluent Bit's error detail to why such a failure says nothing
// about the configuration itself: the dry run ran each file alone, without the files it refers to.
var environmental = []struct{ fragment, reason string }{
	{"could not open parser configuration file", "its parsers_file is not in the corpus"},
	{"No such file or directory", "a file it includes or references is not in the corpus"},
	{"[filter_lua] filter cannot be loaded", "its Lua script is not in the corpus"},
	{"Failed pre_run callback on filter wasm", "its WASM module is not in the corpus"},
	{"plugins_file not found", "its plugins_file is not in the corpus"},
	{"[env] file /run/secrets", "the secret file its env section reads does not exist"},
	{"could not configure property 'group1'", "the offending property is in an included file that is not in the corpus"},
	{"are not valid in the main configuration file", "parser sections are refused only because the file was loaded as a main config instead of a parsers file"},
}

// knownDisagreements are files on which we knowingly say something else than the dry run, with
// why. The test requires that we still disagree in that way, so that the list cannot go stale.
var knownDisagreements = map[string]string{
	"fluent-bit-docs/pipeline__outputs__azure_kusto__L168__tab-fluent-bit.yaml": "documentation placeholders like <compression_enabled> in typed properties: the dry run checks property names only, we also check values",
	"fluent-bit-docs/pipeline__outputs__azure_kusto__L210__tab-fluent-bit.conf": "documentation placeholders like <compression_enabled> in typed properties: the dry run checks property names only, we also check values",
	"fluent-bit-docs/pipeline__processors__sampling__L39__tab-fluent-bit.yaml":  "sampling_percentage is mis-indented (it belongs under sampling_settings); the dry run does not check processor properties, Fluent Bit refuses it when the pipeline starts",
}

// classify turns a corpus row into the expectation to hold our model to, or the reason the row is
// excluded from the dry-run agreement.
func classify(r corpusRow) (expectation, string) {
	d := r.Detail
	switch {
	case r.DryRun == "pass":
		return expectation{kind: "pass"}, ""
	case strings.HasPrefix(r.DryRun, "crash"):
		return expectation{}, "Fluent Bit crashed (" + r.DryRun + "), which says nothing about validity"
	case r.DryRun == "skipped":
		return expectation{}, "not run by the dry run: " + d
	case r.DryRun != "fail":
		return expectation{}, "unknown dry-run result " + r.DryRun
	}
	for _, env := range environmental {
		if strings.Contains(d, env.fragment) {
			return expectation{}, env.reason
		}
	}
	if m := reUnknownProp.FindStringSubmatch(d); m != nil {
		return expectation{kind: "property", plugin: m[1], property: m[2]}, ""
	}
	if m := reNoPlugin.FindStringSubmatch(d); m != nil {
		return expectation{kind: "plugin", plugin: m[1]}, ""
	}
	if m := reNoProcessor.FindStringSubmatch(d); m != nil {
		return expectation{kind: "plugin", plugin: m[1]}, ""
	}
	if m := reNoMatch.FindStringSubmatch(d); m != nil {
		return expectation{kind: "match", plugin: m[1]}, ""
	}
	if m := reDuplicate.FindStringSubmatch(d); m != nil {
		return expectation{kind: "duplicate", plugin: m[1], property: m[2]}, ""
	}
	if reSyntax.MatchString(d) {
		return expectation{kind: "syntax"}, ""
	}
	if reNoName.MatchString(d) {
		return expectation{kind: "name"}, ""
	}
	if m := reCannotSet.FindStringSubmatch(d); m != nil {
		return expectation{kind: "value", plugin: m[2], property: m[1]}, ""
	}
	if ms := reTelemetry.FindAllStringSubmatch(d, -1); ms != nil {
		name := ms[0][1] + ms[0][2] + ms[0][3]
		return expectation{kind: "value", property: name}, ""
	}
	if r.Expected != "unknown" {
		return expectation{}, "failed without a config error of its own (" + d + "); held to its source's " + r.Expected + " only"
	}
	return expectation{}, "failed without a config error of its own: " + d
}

// propertyFromEnv reports whether a plugin's property takes its value from a ${VARIABLE}.
func propertyFromEnv(cfg *Config, plugin, property string) bool {
	for _, sec := range cfg.Sections {
		if !strings.EqualFold(sec.Name(), plugin) {
			continue
		}
		if v, ok := sec.Get(property); ok && strings.Contains(v, "${") {
			return true
		}
	}
	return false
}

// check reports whether our verdict on src agrees with the expectation, and what we said.
func (e expectation) check(cfg *Config, parseErr error, verr ErrorList) (bool, string) {
	if parseErr != nil {
		return e.kind == "syntax", parseErr.Error()
	}
	said := verr.Error()
	if e.kind == "pass" {
		return len(verr) == 0, said
	}
	for _, err := range verr {
		if e.plugin != "" && !strings.EqualFold(err.Plugin, e.plugin) {
			continue
		}
		switch e.kind {
		case "property":
			if strings.EqualFold(err.Property, e.property) && err.Message == "unknown configuration property" {
				return true, said
			}
		case "plugin":
			if err.Message == "unknown plugin" {
				return true, said
			}
		case "match":
			if strings.HasPrefix(err.Message, "no match rule") {
				return true, said
			}
		case "duplicate":
			if strings.EqualFold(err.Property, e.property) && err.Message == "property is set more than once" {
				return true, said
			}
		case "name":
			if strings.Contains(err.Message, "'name'") {
				return true, said
			}
		case "value":
			ours, theirs := strings.ToLower(err.Property), strings.ToLower(e.property)
			if strings.HasSuffix(ours, theirs) || strings.HasPrefix(ours, theirs) {
				return true, said
			}
		}
	}
	return false, said
}

// TestCorpusAgreement holds the model to Fluent Bit 5.1.1's own dry run over real configuration
// files, and to what the files' sources say about them.
func TestCorpusAgreement(t *testing.T) {
	dir, rows := readCorpus(t)
	schema, err := LoadSchema(UpstreamSchemaVersion)
	if err != nil {
		t.Fatal(err)
	}
	agree, total, sourceHeld := 0, 0, 0
	var excluded []string
	for _, r := range rows {
		src := readCorpusFile(t, dir, r)
		cfg, perr := Parse(src, r.Format)
		var verr ErrorList
		if perr == nil {
			verr = schema.Validate(cfg)
		}

		// What the file's source says.
		switch r.Expected {
		case "VALID":
			sourceHeld++
			if perr != nil {
				t.Errorf("%s: source says VALID (%s) but it does not parse: %v", r.File, r.Note, perr)
			}
		case "INVALID":
			sourceHeld++
			if perr == nil && len(verr) == 0 && len(ValidatePipeline(cfg)) == 0 {
				t.Errorf("%s: source says INVALID (%s) but we accept it", r.File, r.Note)
			}
		}

		want, why := classify(r)
		if why == "" && r.Expected == "INVALID" && want.kind == "pass" {
			why = "Fluent Bit accepts it but its source says INVALID (" + r.Note + "); held to INVALID above"
		}
		if why != "" {
			excluded = append(excluded, r.File+": "+why)
			continue
		}
		ok, said := want.check(cfg, perr, verr)
		if !ok && want.kind == "property" && perr == nil && propertyFromEnv(cfg, want.plugin, want.property) {
			// Fluent Bit refuses a core property whose value is empty; the dry run did not
			// define the variable, so the failure is about its environment, not the file.
			excluded = append(excluded, r.File+": "+want.property+" is set from an environment variable the dry run did not define")
			continue
		}
		total++
		if reason, known := knownDisagreements[r.File]; known {
			if ok {
				t.Errorf("%s: listed as a known disagreement (%s) but we now agree; remove it from the list", r.File, reason)
			} else {
				excluded = append(excluded, r.File+": known disagreement: "+reason+"; we say: "+said)
			}
			total--
			continue
		}
		if !ok {
			t.Errorf("%s: Fluent Bit 5.1.1 says %s %s %s (%s); we say: %q", r.File, want.kind, want.plugin, want.property, r.Detail, said)
			continue
		}
		agree++
	}
	t.Logf("excluded from the dry-run agreement (%d):\n  %s", len(excluded), strings.Join(excluded, "\n  "))
	t.Logf("agreement with Fluent Bit 5.1.1 dry run: %d/%d files (%d excluded); %d files held to their source's VALID/INVALID", agree, total, len(excluded), sourceHeld)
	if total < 890 {
		t.Errorf("only %d corpus files compared; the corpus has %d", total, len(rows))
	}
	var el ErrorList
	if _, err := Parse([]byte("[INPUT]\n  Name\n"), FormatClassic); !errors.As(err, &el) || el[0].Line != 2 {
		t.Errorf("syntax error = %v, want an ErrorList at line 2", err)
	}
}
