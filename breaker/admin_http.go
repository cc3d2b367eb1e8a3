package breaker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rebound-queue/rebound/internal/httpjson"
	"github.com/rebound-queue/rebound/internal/strictjson"
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
// characters) is refused with 400; so are a "by" that breaks ValidateActor's
// rule and a "reason" that breaks ValidateText's (NUL, over MaxTextBytes),
// and a body holding text that JSON decoding would alter (bytes that are not
// UTF-8, a lone \ud800-\udfff escape, a member named twice), and any query
// parameter (these routes take none). Errors are {"error": "..."} with 400
// (bad input, naming it), 404 (unknown key or route), 405 (a route asked
// with another method; the Allow header lists the methods it takes) or 500;
// bad input changes nothing.
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
	list := func(w http.ResponseWriter, r *http.Request) {
		if !noQuery(w, r) {
			return
		}
		rows, err := store.List(r.Context())
		if err != nil {
			httpjson.WriteError(w, http.StatusInternalServerError, "list breakers: "+err.Error())
			return
		}
		shown := make([]*Row, len(rows))
		for i, r := range rows {
			shown[i] = show(r)
		}
		httpjson.WriteJSON(w, http.StatusOK, shown)
	}
	get := func(w http.ResponseWriter, r *http.Request) {
		key, ok := pathKey(w, r)
		if !ok {
			return
		}
		row, err := store.Get(r.Context(), key)
		if writeStoreError(w, key, err) {
			return
		}
		httpjson.WriteJSON(w, http.StatusOK, show(row))
	}
	reset := func(w http.ResponseWriter, r *http.Request) {
		key, ok := pathKey(w, r)
		if !ok {
			return
		}
		req, ok := readAdminRequest(w, r)
		if !ok {
			return
		}
		if req.For != "" {
			httpjson.WriteError(w, http.StatusBadRequest, `"for" applies to open, not reset`)
			return
		}
		if err := validateChange(req.By, req.Reason); err != nil {
			httpjson.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		row, err := store.Reset(r.Context(), ResetParams{Key: key, By: req.By, Reason: req.Reason})
		if writeStoreError(w, key, err) {
			return
		}
		httpjson.WriteJSON(w, http.StatusOK, show(row))
	}
	open := func(w http.ResponseWriter, r *http.Request) {
		key, ok := pathKey(w, r)
		if !ok {
			return
		}
		req, ok := readAdminRequest(w, r)
		if !ok {
			return
		}
		if req.For == "" {
			httpjson.WriteError(w, http.StatusBadRequest, `"for" is required, e.g. {"for": "10m"}`)
			return
		}
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 || d > MaxHold {
			httpjson.WriteError(w, http.StatusBadRequest, fmt.Sprintf(`"for" %q: want a duration in (0s, %s], e.g. "10m"`, req.For, MaxHold))
			return
		}
		if err := validateChange(req.By, req.Reason); err != nil {
			httpjson.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		row, err := store.Open(r.Context(), OpenParams{Key: key, For: d, By: req.By, Reason: req.Reason})
		if writeStoreError(w, key, err) {
			return
		}
		httpjson.WriteJSON(w, http.StatusOK, show(row))
	}
	// Routes by path, then method: a known path asked with another method
	// is a 405 naming the allowed ones, not a 404 (nor ServeMux's redirect).
	mux := http.NewServeMux()
	mux.Handle(AdminPrefix, httpjson.Methods{http.MethodGet: list})
	mux.Handle(AdminPrefix+"/{key}", httpjson.Methods{http.MethodGet: get})
	mux.Handle(AdminPrefix+"/{key}/reset", httpjson.Methods{http.MethodPost: reset})
	mux.Handle(AdminPrefix+"/{key}/open", httpjson.Methods{http.MethodPost: open})
	mux.HandleFunc(AdminPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, http.StatusNotFound, "no such breaker route: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// pathKey returns the {key} path segment, or answers 400 naming what breaks
// ValidateKey's rule.
func pathKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !noQuery(w, r) {
		return "", false
	}
	key := r.PathValue("key")
	if err := ValidateKey(key); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	return key, true
}

// noQuery answers 400 when the request has a query string, which no
// breaker route takes (a POST .../open?for=10m would otherwise act without
// its "for"): false then.
func noQuery(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return true
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "query: "+err.Error())
		return false
	}
	for name := range q {
		httpjson.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %s (breaker routes take none)", quoteKey(name)))
		return false
	}
	httpjson.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unexpected query %s (breaker routes take none)", quoteKey(r.URL.RawQuery)))
	return false
}

func readAdminRequest(w http.ResponseWriter, r *http.Request) (AdminRequest, bool) {
	var req AdminRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		httpjson.WriteError(w, http.StatusBadRequest, fmt.Sprintf("body: larger than %d bytes", mbe.Limit))
		return req, false
	}
	if err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "read body: "+err.Error())
		return req, false
	}
	// encoding/json would turn these into U+FFFD without a word: refuse
	// them before decoding, so what is recorded is what was sent.
	if err := strictjson.Check(body); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
		return req, false
	}
	// encoding/json keeps the last of two members of one name: refuse them.
	if err := strictjson.CheckUnique(body); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
		return req, false
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			httpjson.WriteError(w, http.StatusBadRequest, "body: "+bodyProblem(err))
			return req, false
		}
		if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
			httpjson.WriteError(w, http.StatusBadRequest, "body: unexpected data after the JSON object: "+quoteKey(string(rest)))
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
		httpjson.WriteError(w, http.StatusNotFound, fmt.Sprintf("no circuit breaker state for key %q", key))
	case errors.Is(err, ErrInvalidKey):
		httpjson.WriteError(w, http.StatusBadRequest, err.Error())
	default:
		httpjson.WriteError(w, http.StatusInternalServerError, err.Error())
	}
	return true
}

// bodyProblem says what is wrong with a request body in JSON's words, not
// Go's.
func bodyProblem(err error) string {
	const want = `want an object like {"for": "10m", "by": "...", "reason": "..."}`
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON (at byte %d): %s", se.Offset, want)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not JSON (it ends before the object does): " + want
	case errors.As(err, &te) && te.Field == "":
		return "not a JSON object: " + want
	case errors.As(err, &te):
		return fmt.Sprintf("%q has the wrong type (%s): %s", te.Field, te.Value, want)
	}
	return strings.TrimPrefix(err.Error(), "json: ") + ": " + want
}
