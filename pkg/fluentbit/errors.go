package fluentbit

import (
	"fmt"
	"strings"
)

// Error is one problem found in a configuration, positioned at the line (and column where known)
// of the section, property or syntax error it is about.
type Error struct {
	Line     int
	Column   int
	Section  string // "input", "filter", "output", "service", "parser", ... ; empty for syntax errors
	Plugin   string
	Property string
	Message  string
	// Suggestion is the closest known name when Message is about an unknown name.
	Suggestion string
}

// Error formats the error like `line 14: output "s4": unknown plugin (did you mean "s3"?)`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Section != "" {
		b.WriteString(e.Section)
		if e.Plugin != "" {
			fmt.Fprintf(&b, " %q", e.Plugin)
		}
		b.WriteString(": ")
	}
	if e.Property != "" {
		fmt.Fprintf(&b, "property %q: ", e.Property)
	}
	b.WriteString(e.Message)
	if e.Suggestion != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", e.Suggestion)
	}
	return b.String()
}

// ErrorList is every problem found, in source order. A nil or empty list means no problem.
type ErrorList []*Error

// Error joins the messages of all errors.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Err returns the list as an error, or nil when it is empty (so that a nil ErrorList is never
// returned as a non-nil error interface).
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// suggest returns the candidate closest to name by edit distance, when it is close enough to be a
// plausible typo, or "".
func suggest(name string, candidates []string) string {
	name = strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein(name, strings.ToLower(c))
		if bestDist < 0 || d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	// Allow roughly one typo per four characters, at least one: "s4" -> "s3", "bucketx" -> "bucket".
	limit := len(name) / 4
	if limit < 1 {
		limit = 1
	}
	if bestDist < 0 || bestDist > limit || bestDist == 0 {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Long names are not typos of plugin or property names; avoid quadratic work on them.
		if a == b {
			return 0
		}
		return 1 << 20
	}
	// Optimal string alignment distance: edits plus transpositions of neighbours ("kye" -> "key").
	pprev := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pprev[j-2]+1)
			}
		}
		pprev, prev, cur = prev, cur, pprev
	}
	return prev[len(b)]
}
