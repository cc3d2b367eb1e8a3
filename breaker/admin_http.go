package breaker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// AdminPrefix is where NewAdminHandler's routes live.
const AdminPrefix = "/api/admin/breakers"

// maxAdminBody caps an admin request body (bytes).
const maxAdminBody = 64 << 10

// AdminRequest is the JSON body of POST .../reset and .../open: one JSON
// object, nothing after it; unknown fields are refused. An empty body is
// the zero AdminRequest.
type AdminRequest struct {
	// For is how long to hold the breaker open ("10m"); open only.
	For string `json:"for,omitempty"`
	// By names who acts. Optional: defaults to "admin-api".
	By string `json:"by,omitempty"`
	// Reason is recorded with the change. Optional.
	Reason string `json:"reason,omitempty"`
}

// AdminOpts are NewAdminHandler's optional settings. nil means the zero
// AdminOpts.
type AdminOpts struct {
	// RedactError rewrites each answered row's LastError (the last
	// failure's error text, which may echo a secret an upstream sent back)
	// for display; the stored row keeps the original. rebound's worker
	// passes its redaction (internal/redact's Text: secret headers,
	// name=value pairs, Bearer credentials, ...). nil answers the stored
	// text as it is.
	RedactError func(string) string
}

// NewAdminHandler serves the breakers' admin API over store (mount it at
// AdminPrefix and AdminPrefix+"/"; authentication is the server's job);
// every row it answers shows its LastError through opts.RedactError:
//
//	GET  /api/admin/breakers              every row, ordered by key (JSON array of Row)
//	GET  /api/admin/breakers/{key}        one row; 404 when the key has no row
//	POST /api/admin/breakers/{key}/reset  close by hand: {"by": "...", "reason": "..."}
//	POST /api/admin/breakers/{key}/open   hold open: {"for": "10m", "by": "...", "reason": "..."}
//
// Keys are path segments: escape a "/" in a key as %2F. A key that breaks
// ValidateKey's rule (empty, blank, over MaxKeyLength characters, control
// characters) is refused with 400. Errors are {"error": "..."} with 400 (bad
// input, naming it), 404 (unknown key or route) or 500; bad input changes
// nothing.
func NewAdminHandler(store *Store, opts *AdminOpts) http.Handler {
	var o AdminOpts
	if opts != nil {
		o = *opts
	}
	show := func(r *Row) *Row {
		if o.RedactError == nil || r == nil || r.LastError == "" {
			return r
		}
		c := *r
		c.LastError = o.RedactError(r.LastError)
		return &c
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AdminPrefix, func(w http.ResponseWriter, r *http.Request) {
		rows, err := store.List(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, "list breakers: "+err.Error())
			return
		}
		shown := make([]*Row, len(rows))
		for i, r := range rows {
			shown[i] = show(r)
		}
		writeJSON(w, http.StatusOK, shown)
	})
	mux.HandleFunc("GET "+AdminPrefix+"/{key}", func(w http.ResponseWriter, r *http.Request) {
		key, ok := pathKey(w, r)
		if !ok {
			return
		}
		row, err := store.Get(r.Context(), key)
		if writeStoreError(w, key, err) {
			return
		}
		writeJSON(w, http.StatusOK, show(row))
	})
	mux.HandleFunc("POST "+AdminPrefix+"/{key}/reset", func(w http.ResponseWriter, r *http.Request) {
		key, ok := pathKey(w, r)
		if !ok {
			return
		}
		req, ok := readAdminRequest(w, r)
		if !ok {
			return
		}
		if req.For != "" {
			writeError(w, http.StatusBadRequest, `"for" applies to open, not reset`)
			return
		}
		if err := validateChange(req.By, req.Reason); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		row, err := store.Reset(r.Context(), ResetParams{Key: key, By: req.By, Reason: req.Reason})
		if writeStoreError(w, key, err) {
			return
		}
		writeJSON(w, http.StatusOK, show(row))
	})
	mux.HandleFunc("POST "+AdminPrefix+"/{key}/open", func(w http.ResponseWriter, r *http.Request) {
		key, ok := pathKey(w, r)
		if !ok {
			return
		}
		req, ok := readAdminRequest(w, r)
		if !ok {
			return
		}
		if req.For == "" {
			writeError(w, http.StatusBadRequest, `"for" is required, e.g. {"for": "10m"}`)
			return
		}
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 || d > MaxHold {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(`"for" %q: want a duration in (0s, %s], e.g. "10m"`, req.For, MaxHold))
			return
		}
		if err := validateChange(req.By, req.Reason); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		row, err := store.Open(r.Context(), OpenParams{Key: key, For: d, By: req.By, Reason: req.Reason})
		if writeStoreError(w, key, err) {
			return
		}
		writeJSON(w, http.StatusOK, show(row))
	})
	mux.HandleFunc(AdminPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such breaker route: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// pathKey returns the {key} path segment, or answers 400 naming what breaks
// ValidateKey's rule.
func pathKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.PathValue("key")
	if err := ValidateKey(key); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	return key, true
}

func readAdminRequest(w http.ResponseWriter, r *http.Request) (AdminRequest, bool) {
	var req AdminRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return req, false
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "body: want JSON {\"for\", \"by\", \"reason\"}: "+err.Error())
			return req, false
		}
		if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
			writeError(w, http.StatusBadRequest, "body: unexpected data after the JSON object: "+quoteKey(string(rest)))
			return req, false
		}
	}
	if req.By == "" {
		req.By = "admin-api"
	}
	return req, true
}

func writeStoreError(w http.ResponseWriter, key string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no circuit breaker state for key %q", key))
	case errors.Is(err, ErrInvalidKey):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
