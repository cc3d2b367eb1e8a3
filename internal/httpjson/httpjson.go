// Package httpjson writes the JSON answers of rebound's HTTP APIs: a value,
// the error body {"error": "..."}, and 405 with an Allow header for a
// method a route does not take. The breakers' admin API (package breaker)
// and the worker's server (internal/httpserver, and through it the
// dead-letter and batch APIs) answer with it alike.
//
// It imports nothing of rebound's and only the standard library, so any
// package may use it without the server's metrics and readiness machinery.
package httpjson

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// WriteJSON writes v as the JSON body of a response with status code:
// Content-Type application/json, Cache-Control no-store, indented by two
// spaces. An encoding error is dropped (the status is already sent).
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is the JSON body of every error response: {"error": "..."}.
type ErrorBody struct {
	// Error says what went wrong, in one line.
	Error string `json:"error"`
}

// WriteError writes {"error": msg} with status code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, ErrorBody{Error: msg})
}

// Methods serves one path with a handler per method. GET also serves HEAD,
// as net/http's ServeMux does; any other method is answered 405 with an
// Allow header listing the methods it takes and a JSON error naming them.
// Mount it on a pattern without a method (mux.Handle("/api/x/{id}",
// Methods{http.MethodGet: show})): a known path asked with another method
// is then a 405, where method patterns next to a catch-all give a 404 or a
// redirect.
type Methods map[string]http.HandlerFunc

// ServeHTTP calls the handler of r's method (GET's for a HEAD without its
// own), or answers 405 with Allow: the methods of m, sorted, HEAD listed
// once with GET, and {"error": "method M not allowed on PATH (allowed:
// ...)"}.
func (m Methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := m[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = m[http.MethodGet]
	}
	if ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m)+1)
	for method := range m {
		allowed = append(allowed, method)
		if method == http.MethodGet {
			allowed = append(allowed, http.MethodHead)
		}
	}
	slices.Sort(allowed)
	allowed = slices.Compact(allowed) // GET's HEAD and a HEAD of its own
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
}
