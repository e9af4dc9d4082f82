package fluentbit

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

const templated = `pipeline:
  inputs:
    - name: http
      tls.key_passwd: "{{ secrets.tls_pass }}"
      processors:
        logs:
          - name: lua
            script: "{{files.script}}"
  outputs:
    - name: es
      match: '*'
      http_passwd: "{{ secrets.es_pass }}-{{ secrets.tls_pass }}"
`

func TestReferences(t *testing.T) {
	cfg, err := Parse([]byte(templated), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	want := []Reference{
		{Kind: "secrets", Name: "tls_pass", Line: 4},
		{Kind: "files", Name: "script", Line: 8},
		{Kind: "secrets", Name: "es_pass", Line: 12},
		{Kind: "secrets", Name: "tls_pass", Line: 12},
	}
	if got := cfg.References(); !reflect.DeepEqual(got, want) {
		t.Fatalf("References() = %+v, want %+v", got, want)
	}
	errs := cfg.CheckReferences(func(r Reference) bool { return r.Kind == "secrets" && r.Name == "tls_pass" })
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if w := []string{`line 8: undefined pipeline file "script"`, `line 12: undefined pipeline secret "es_pass"`}; !reflect.DeepEqual(got, w) {
		t.Fatalf("CheckReferences() = %q, want %q", got, w)
	}

	classic, err := Parse([]byte("[OUTPUT]\n    name {{ files.plugin }}\n    match *\n"), FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	if got := classic.References(); !reflect.DeepEqual(got, []Reference{{Kind: "files", Name: "plugin", Line: 2}}) {
		t.Fatalf("classic References() = %+v", got)
	}
}

func TestRenderResolvesReferences(t *testing.T) {
	cfg, err := Parse([]byte(templated), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	opts := RenderOptions{
		Secrets: map[string]string{"tls_pass": "s3cr3t", "es_pass": "hunter2"},
		Files:   map[string]string{"script": "/fluent-bit/files/script"},
	}
	out, err := Render(cfg, FormatYAML, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tls.key_passwd: s3cr3t", "script: /fluent-bit/files/script", "http_passwd: hunter2-s3cr3t"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("rendered config lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("{{")) {
		t.Errorf("rendered config keeps a reference:\n%s", out)
	}
	if again, _ := Render(cfg, FormatYAML, opts); !bytes.Equal(out, again) {
		t.Error("Render is not deterministic")
	}
	if refs := cfg.References(); len(refs) != 4 {
		t.Errorf("Render changed the config it was given: %d references left", len(refs))
	}

	// An unresolved reference fails, naming the reference but never a secret value.
	_, err = Render(cfg, FormatYAML, RenderOptions{Secrets: map[string]string{"tls_pass": "s3cr3t"}})
	if err == nil || !strings.Contains(err.Error(), `undefined pipeline secret "es_pass"`) || !strings.Contains(err.Error(), `undefined pipeline file "script"`) {
		t.Fatalf("Render with missing references = %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error leaks a secret value: %v", err)
	}
}

func TestRenderClassicRefusesMultilineSecret(t *testing.T) {
	cfg, err := Parse([]byte("[OUTPUT]\n    name es\n    match *\n    http_passwd {{ secrets.p }}\n"), FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Render(cfg, FormatClassic, RenderOptions{Secrets: map[string]string{"p": "line1\nline2"}})
	if err == nil || strings.Contains(err.Error(), "line1") {
		t.Fatalf("Render = %v, want an error that does not show the value", err)
	}
	out, err := Render(cfg, FormatYAML, RenderOptions{Secrets: map[string]string{"p": "line1\nline2"}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := back.Outputs()[0].Get("http_passwd"); v != "line1\nline2" {
		t.Fatalf("multi-line secret in YAML = %q", v)
	}
}

func TestRenderStorage(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		src     string
		storage StorageSettings
		want    string
	}{
		{
			name: "best-effort-low-resource onto a config without service",
			src:  "[INPUT]\n    name tail\n    path /x\n    storage.type memory\n[OUTPUT]\n    name stdout\n    match *\n",
			storage: StorageSettings{
				Path: "/data/storage", SyncFull: &no, MaxChunksUp: 128, BacklogMemLimit: "5M",
				InputStorageType: "filesystem", PauseOnChunksOverlimit: &yes,
			},
			want: `[SERVICE]
    storage.path              /data/storage
    storage.sync              normal
    storage.max_chunks_up     128
    storage.backlog.mem_limit 5M

[INPUT]
    name                              tail
    path                              /x
    storage.type                      filesystem
    storage.pause_on_chunks_overlimit on

[OUTPUT]
    name  stdout
    match *
`,
		},
		{
			name:    "the profile wins over repeated service sections and keys",
			src:     "[SERVICE]\n    storage.sync normal\n[INPUT]\n    name dummy\n[SERVICE]\n    storage.sync normal\n    flush 2\n",
			storage: StorageSettings{SyncFull: &yes},
			want:    "[SERVICE]\n    storage.sync full\n\n[INPUT]\n    name dummy\n\n[SERVICE]\n    flush 2\n",
		},
		{
			name:    "high-performance-optimal-throughput keeps the rest of the service",
			src:     "[SERVICE]\n    flush 1\n    storage.sync normal\n[INPUT]\n    name dummy\n",
			storage: StorageSettings{SyncFull: &yes, InputStorageType: "memory"},
			want: `[SERVICE]
    flush        1
    storage.sync full

[INPUT]
    name         dummy
    storage.type memory
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), FormatClassic)
			if err != nil {
				t.Fatal(err)
			}
			st := tc.storage
			out, err := Render(cfg, FormatClassic, RenderOptions{Storage: &st})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("Render =\n%s\nwant\n%s", out, tc.want)
			}
			if _, err := Parse(out, FormatClassic); err != nil {
				t.Fatalf("rendered config does not parse: %v", err)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	classic := "@SET level=info\n\n[SERVICE]\n    flush     1\n    log_level ${level}\n\n[INPUT]\n    name tail\n    path /var/log/*.log\n    tag  app.*\n\n[FILTER]\n    name   modify\n    match  app.*\n    add    env prod\n    rename a b\n    add    team core\n\n[OUTPUT]\n    name  stdout\n    match *\n"
	wantYAML := `env:
  level: info
service:
  flush: 1
  log_level: ${level}
pipeline:
  inputs:
    - name: tail
      path: /var/log/*.log
      tag: app.*
  filters:
    - name: modify
      match: app.*
      add:
        - env prod
        - team core
      rename: a b
  outputs:
    - name: stdout
      match: '*'
`
	cfg, err := Parse([]byte(classic), FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Convert(cfg, FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if string(y) != wantYAML {
		t.Fatalf("Convert to YAML =\n%s\nwant\n%s", y, wantYAML)
	}
	ycfg, err := Parse(y, FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Convert(ycfg, FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	// The repeated key is grouped where it first appeared; nothing else moves.
	wantClassic := strings.Replace(classic, "    add    env prod\n    rename a b\n    add    team core\n", "    add    env prod\n    add    team core\n    rename a b\n", 1)
	if string(back) != wantClassic {
		t.Fatalf("Convert back to classic =\n%s\nwant\n%s", back, wantClassic)
	}

	withProcessors, err := Parse([]byte(templated), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Convert(withProcessors, FormatClassic); err == nil || !strings.Contains(err.Error(), "processors have no classic equivalent") {
		t.Fatalf("Convert with processors to classic = %v", err)
	}
}
