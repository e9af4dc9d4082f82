package fluentbit

import "fmt"

// Parse parses src in the given format. Syntax errors are returned as an ErrorList whose entries
// carry the line (and column where known).
func Parse(src []byte, format Format) (*Config, error) {
	switch format {
	case FormatClassic:
		return parseClassic(src)
	case FormatYAML:
		return parseYAML(src)
	default:
		return nil, fmt.Errorf("unknown config format %q", format)
	}
}
