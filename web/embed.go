// Package web holds the core UI's front-end sources (TypeScript, Preact, built by Vite) and
// embeds what `make ui` builds from them into dist/ui, for cmd/core to serve.
package web

import (
	"embed"
	"io/fs"
)

// dist holds dist/README.md (committed, so that this compiles on a clean clone) and, once
// `make ui` has run, the built UI in dist/ui.
//
//go:embed all:dist
var dist embed.FS

// Assets is the built UI, or nil when it was not built.
func Assets() fs.FS {
	ui, err := fs.Sub(dist, "dist/ui")
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(ui, "index.html"); err != nil {
		return nil
	}
	return ui
}
