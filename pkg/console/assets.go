package console

import (
	"bytes"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// contentSecurityPolicy allows only this origin's scripts, styles and calls: the assets are
// embedded, nothing comes from a CDN.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Calyptia Core: UI not built</title></head>
<body><main><h1>UI not built</h1>
<p>This core binary was built without the web UI's assets. Run <code>make ui</code> (it needs Node and npm),
then build again (<code>make build</code>).</p>
<p>The API under <code>/k8s/</code> and the probes work without them.</p></main></body></html>
`

// assets serves the built UI: files by path, with long caching for Vite's content-hashed
// assets, and index.html for every other path (the UI routes in the browser).
func (s *Server) assets() http.Handler {
	var index []byte
	if s.cfg.Assets != nil {
		index, _ = fs.ReadFile(s.cfg.Assets, "index.html")
	}
	files := http.FileServerFS(orEmpty(s.cfg.Assets))
	start := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the UI's pages are read-only")
			return
		}
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		if index == nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(notBuiltPage))
			return
		}
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if p != "" && p != "index.html" {
			if st, err := fs.Stat(s.cfg.Assets, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(p, "assets/") {
				http.NotFound(w, r)
				return
			}
		}
		s.ensureCSRFCookie(w, r)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "index.html", start, bytes.NewReader(index))
	})
}

func orEmpty(f fs.FS) fs.FS {
	if f == nil {
		return emptyFS{}
	}
	return f
}

type emptyFS struct{}

func (emptyFS) Open(string) (fs.File, error) { return nil, fs.ErrNotExist }
