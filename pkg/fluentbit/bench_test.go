package fluentbit

import (
	"fmt"
	"strings"
	"testing"
)

// config500 builds a realistic classic config of 500 lines: a service section and plugins of
// the kinds pipelines use, with typed values and repeated keys.
func config500() []byte {
	var b strings.Builder
	b.WriteString("[SERVICE]\n    flush 1\n    log_level info\n    http_server on\n    storage.path /data\n\n")
	lines := 6
	for i := 0; lines < 500; i++ {
		var block string
		switch i % 4 {
		case 0:
			block = fmt.Sprintf("[INPUT]\n    name tail\n    tag app.%d\n    path /var/log/app%d/*.log\n    read_from_head true\n    buffer_chunk_size 512K\n    rotate_wait 5s\n    mem_buf_limit 5M\n\n", i, i)
		case 1:
			block = fmt.Sprintf("[FILTER]\n    name modify\n    match app.%d\n    add env prod\n    add team core\n    rename log message\n\n", i-1)
		case 2:
			block = fmt.Sprintf("[FILTER]\n    name grep\n    match app.*\n    regex message error%d\n\n", i)
		case 3:
			block = fmt.Sprintf("[OUTPUT]\n    name s3\n    match app.%d\n    bucket logs-%d\n    region us-east-1\n    total_file_size 50M\n    upload_timeout 10m\n    use_put_object on\n\n", i-3, i)
		}
		n := strings.Count(block, "\n")
		if lines+n > 500 {
			for ; lines < 500; lines++ {
				b.WriteString("# padding\n")
			}
			break
		}
		b.WriteString(block)
		lines += n
	}
	return []byte(b.String())
}

func TestConfig500(t *testing.T) {
	src := config500()
	if n := strings.Count(string(src), "\n"); n != 500 {
		t.Fatalf("benchmark config has %d lines, want 500", n)
	}
	cfg, err := Parse(src, FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	if errs := mustSchema(t, DefaultSchemaVersion).Validate(cfg); len(errs) != 0 {
		t.Fatalf("benchmark config is invalid: %v", errs)
	}
}

// BenchmarkParseValidate500 parses and validates a 500-line classic config, and the same config
// as YAML.
func BenchmarkParseValidate500(b *testing.B) {
	schema := mustSchema(b, DefaultSchemaVersion)
	classic := config500()
	cfg, err := Parse(classic, FormatClassic)
	if err != nil {
		b.Fatal(err)
	}
	yamlSrc, err := Convert(cfg, FormatYAML)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		format Format
		src    []byte
	}{{FormatClassic, classic}, {FormatYAML, yamlSrc}} {
		b.Run(string(tc.format), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.src)))
			for b.Loop() {
				cfg, err := Parse(tc.src, tc.format)
				if err != nil {
					b.Fatal(err)
				}
				if errs := schema.Validate(cfg); len(errs) != 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}
