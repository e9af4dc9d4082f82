package fluentbit

import (
	"strconv"
	"strings"
)

// Port is a socket Fluent Bit listens on for a plugin of the config.
type Port struct {
	Plugin   string
	Port     int32
	Protocol string // "TCP" | "UDP"
	Line     int
	// Section is "service" for the built-in HTTP server, else "input" or "output".
	Section string
	// Address is the listen address when the config sets one (listen/host/http_listen).
	Address string
}

// listener is one plugin's listening port, as the Fluent Bit plugin corpus's ports.tsv lists them.
type listener struct {
	port     int32
	protocol string
	address  string // property holding the listen address
}

var listeners = map[string]map[string]listener{
	KindInput: {
		"forward":                 {24224, "TCP", "listen"},
		"http":                    {9880, "TCP", "listen"},
		"syslog":                  {5140, "", "listen"}, // protocol from mode
		"opentelemetry":           {4318, "TCP", "listen"},
		"splunk":                  {8088, "TCP", "listen"},
		"elasticsearch":           {9200, "TCP", "listen"},
		"mqtt":                    {1883, "TCP", "listen"},
		"tcp":                     {5170, "TCP", "listen"},
		"udp":                     {5170, "UDP", "listen"},
		"statsd":                  {8125, "UDP", "listen"},
		"collectd":                {25826, "UDP", "listen"},
		"prometheus_remote_write": {8080, "TCP", "listen"},
	},
	KindOutput: {
		"prometheus_exporter": {2021, "TCP", "host"},
		"vivo_exporter":       {2025, "TCP", "host"},
	},
}

// Ports derives the ports Fluent Bit listens on: the service HTTP server when http_server is on,
// and the listening input and output plugins, with their `port` (`http_port`) overriding the
// default. Ports whose value is not known before deployment (an ${ENV} variable) are left out.
func (c *Config) Ports() []Port {
	var out []Port
	if svc := c.Service(); svc != nil {
		// Service settings repeat across [SERVICE] sections; Fluent Bit keeps the last value.
		last := &Section{Kind: KindService, Line: svc.Line}
		for i := len(svc.Properties) - 1; i >= 0; i-- {
			if last.Property(svc.Properties[i].Key) == nil {
				last.Properties = append(last.Properties, svc.Properties[i])
			}
		}
		if on, ok := last.Get("http_server"); ok && isTrue(on) {
			p := Port{Plugin: "http_server", Port: 2020, Protocol: "TCP", Line: last.Property("http_server").Line, Section: KindService}
			p.Address, _ = last.Get("http_listen")
			if ok := override(&p, last, "http_port"); ok {
				out = append(out, p)
			}
		}
	}
	for _, s := range c.Sections {
		l, ok := listeners[s.Kind][strings.ToLower(s.Name())]
		if !ok {
			continue
		}
		p := Port{Plugin: s.Name(), Port: l.port, Protocol: l.protocol, Line: s.Line, Section: s.Kind}
		p.Address, _ = s.Get(l.address)
		switch strings.ToLower(s.Name()) {
		case "forward":
			if path, ok := s.Get("unix_path"); ok && strings.TrimSpace(path) != "" {
				continue // listens on a Unix socket instead
			}
		case "syslog":
			mode, _ := s.Get("mode")
			switch strings.ToLower(strings.TrimSpace(mode)) {
			case "tcp":
				p.Protocol = "TCP"
			case "udp":
				p.Protocol = "UDP"
			default:
				continue // unix_udp (the default) and unix_tcp listen on Unix sockets
			}
		}
		if override(&p, s, "port") {
			out = append(out, p)
		}
	}
	return out
}

// override applies a port property; it reports false when the property is set to something that
// is not a port number (e.g. an ${ENV} variable resolved only at run time).
func override(p *Port, s *Section, key string) bool {
	prop := s.Property(key)
	if prop == nil {
		return true
	}
	n, err := strconv.ParseInt(strings.TrimSpace(prop.Value.Scalar), 10, 32)
	if err != nil || n <= 0 || n > 65535 {
		return false
	}
	p.Port = int32(n)
	p.Line = prop.Line
	return true
}

func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "yes", "1":
		return true
	}
	return false
}
