package fluentbit

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestPortsFromTable derives the port of every `listen` row of ports.tsv, with the default port
// and with a `port` (`http_port`) override.
func TestPortsFromTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testdataDir(t), "ports.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		c := strings.Split(line, "\t")
		if i == 0 || len(c) < 6 || c[5] != "listen" {
			continue
		}
		rows++
		section, plugin, property, transport := c[0], c[1], c[2], c[4]
		def, err := strconv.Atoi(c[3])
		if err != nil {
			t.Fatalf("ports.tsv line %d: port %q: %v", i+1, c[3], err)
		}
		proto := strings.ToUpper(strings.Fields(transport)[0])
		build := func(port string) string {
			switch section {
			case "service":
				s := "[SERVICE]\n    http_server on\n"
				if port != "" {
					s += "    " + property + " " + port + "\n"
				}
				return s
			default:
				s := fmt.Sprintf("[%s]\n    name %s\n", strings.ToUpper(section), plugin)
				if plugin == "syslog" {
					s += "    mode tcp\n" // the default mode (unix_udp) has no port
				}
				if port != "" {
					s += "    " + property + " " + port + "\n"
				}
				return s
			}
		}
		wantPlugin := plugin
		for _, tc := range []struct {
			name, port string
			want       int32
		}{
			{"default", "", int32(def)},
			{"override", "31337", 31337},
		} {
			t.Run(section+"/"+plugin+"/"+tc.name, func(t *testing.T) {
				cfg, err := Parse([]byte(build(tc.port)), FormatClassic)
				if err != nil {
					t.Fatal(err)
				}
				got := cfg.Ports()
				if len(got) != 1 || got[0].Plugin != wantPlugin || got[0].Port != tc.want || got[0].Protocol != proto {
					t.Fatalf("Ports() = %+v, want one %s port %d/%s", got, wantPlugin, tc.want, proto)
				}
			})
		}
	}
	if rows < 14 {
		t.Fatalf("only %d listen rows in ports.tsv", rows)
	}
}

func TestPorts(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		src    string
		want   []Port
	}{
		{
			name:   "forward on a unix socket has no port",
			format: FormatClassic,
			src:    "[INPUT]\n    name forward\n    unix_path /var/run/fluent.sock\n",
		},
		{
			name:   "syslog default mode is a unix socket",
			format: FormatClassic,
			src:    "[INPUT]\n    name syslog\n",
		},
		{
			name:   "syslog unix_tcp mode",
			format: FormatClassic,
			src:    "[INPUT]\n    name syslog\n    mode unix_tcp\n",
		},
		{
			name:   "syslog udp mode",
			format: FormatClassic,
			src:    "[INPUT]\n    name syslog\n    mode udp\n    port 1514\n",
			want:   []Port{{Plugin: "syslog", Port: 1514, Protocol: "UDP", Line: 4, Section: KindInput}},
		},
		{
			name:   "http server off",
			format: FormatClassic,
			src:    "[SERVICE]\n    http_server off\n    http_port 9999\n",
		},
		{
			name:   "the last service setting wins",
			format: FormatClassic,
			src:    "[SERVICE]\n    http_server off\n    http_port 1\n[SERVICE]\n    http_server on\n    http_port 2\n",
			want:   []Port{{Plugin: "http_server", Port: 2, Protocol: "TCP", Line: 6, Section: KindService}},
		},
		{
			name:   "listen address and case-insensitive keys",
			format: FormatClassic,
			src:    "[INPUT]\n    Name HTTP\n    Listen 10.0.0.1\n    PORT 8888\n",
			want:   []Port{{Plugin: "HTTP", Port: 8888, Protocol: "TCP", Line: 4, Section: KindInput, Address: "10.0.0.1"}},
		},
		{
			name:   "port from an environment variable is not known",
			format: FormatClassic,
			src:    "[INPUT]\n    name tcp\n    port ${PORT}\n",
		},
		{
			name:   "connect-only plugins have no listening port",
			format: FormatClassic,
			src:    "[OUTPUT]\n    name forward\n    match *\n    port 24224\n",
		},
		{
			name:   "YAML with service, inputs and exporter",
			format: FormatYAML,
			src: `service:
  http_server: "on"
  http_port: 2021
pipeline:
  inputs:
    - name: forward
    - name: statsd
      port: 9125
  outputs:
    - name: prometheus_exporter
      match: '*'
      host: 0.0.0.0
`,
			want: []Port{
				{Plugin: "http_server", Port: 2021, Protocol: "TCP", Line: 3, Section: KindService},
				{Plugin: "forward", Port: 24224, Protocol: "TCP", Line: 6, Section: KindInput},
				{Plugin: "statsd", Port: 9125, Protocol: "UDP", Line: 8, Section: KindInput},
				{Plugin: "prometheus_exporter", Port: 2021, Protocol: "TCP", Line: 10, Section: KindOutput, Address: "0.0.0.0"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Ports(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Ports() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
