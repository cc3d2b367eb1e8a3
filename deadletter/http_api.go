package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rebound-queue/rebound/internal/httpserver"
	"github.com/rebound-queue/rebound/internal/strictjson"
)

// APIPath is where [NewHandler] serves the admin API. Mount the handler at
// APIPath and APIPath+"/" behind the admin authentication.
const APIPath = "/api/admin/dlq"

// HTTPActor is recorded as retried_by / resolved_by for API calls whose
// body names nobody.
const HTTPActor = "admin-api"

const maxBodyBytes = 1 << 20

// HandlerOpts configures [NewHandler]. The zero value is usable.
type HandlerOpts struct {
	// Logger gets unexpected (500) errors. Defaults to a logger that
	// discards everything.
	Logger *slog.Logger
}

// NewHandler returns the admin HTTP API of the dead-letter queue, JSON in
// and out, with the same semantics as the Go API and `rebound dlq`:
//
//	GET  /api/admin/dlq                list: ?kind=&class=&status=&operation_key=&fingerprint= (each repeatable),
//	                                   since=&until= (RFC 3339, or an age such as 24h meaning that long ago),
//	                                   after= (next_cursor), limit= -> {"entries": [...], "next_cursor": ...}
//	GET  /api/admin/dlq/stats          stats, same filters, top= (groups, 1-1000, default 20) -> Stats
//	GET  /api/admin/dlq/{id}           show -> Entry
//	POST /api/admin/dlq/{id}/retry     {"force": bool, "by": str} -> RetryResult
//	POST /api/admin/dlq/{id}/resolve   {"note": str, "by": str} -> Entry
//	POST /api/admin/dlq/retry          {"all": true, filter fields, "force", "dry_run", "by"} -> RetryManyResult
//	POST /api/admin/dlq/resolve        {"all": true, filter fields, "note", "dry_run", "by"} -> ResolveManyResult
//	POST /api/admin/dlq/purge          {"older_than": "30d", "dry_run": bool} -> PurgeResult
//
// Filter fields in bodies are "kinds", "classes", "statuses",
// "operation_keys", "fingerprints" (arrays of strings) and "since", "until"
// (strings: RFC 3339, or an age such as 24h or 7d meaning that long ago, as
// in query strings and the CLI). Any other query parameter is a 400, and so is
// any query parameter on a POST route. Classes must be among retrypolicy.Classes().
// Entries are shown through [Redact], stats through [RedactStats] (error
// text included). A "note" and a "by" follow the rule of every text an
// operator records (breaker.ValidateText, breaker.ValidateActor: at most
// breaker.MaxTextBytes, no NUL; no control characters in "by"), and a body
// holding text that JSON decoding would alter (bytes that are not UTF-8, a
// lone \ud800-\udfff escape) is refused, naming the field, and so is a body
// naming a member twice. Errors are
// {"error": "..."}: 400 for bad input, 404 for an unknown entry or route,
// 405 for a route asked with another method (the Allow header lists the
// methods it takes), 409 for an entry in the wrong status (retried,
// resolved), 500 otherwise; nothing is changed when an error is returned.
// Authentication is the caller's: mount it behind the admin token check.
func NewHandler(store *Store, opts *HandlerOpts) http.Handler {
	logger := slog.New(slog.DiscardHandler)
	if opts != nil && opts.Logger != nil {
		logger = opts.Logger
	}
	a := &api{store: store, logger: logger}
	// Routes by path, then method: a known path asked with another method
	// is a 405 naming the allowed ones, not a 404 (nor ServeMux's redirect).
	get := func(h http.HandlerFunc) httpserver.Methods { return httpserver.Methods{http.MethodGet: h} }
	post := func(h http.HandlerFunc) httpserver.Methods { return httpserver.Methods{http.MethodPost: h} }
	mux := http.NewServeMux()
	mux.Handle(APIPath, get(a.list))
	mux.Handle(APIPath+"/{$}", get(a.list))
	mux.Handle(APIPath+"/stats", get(a.stats))
	mux.Handle(APIPath+"/{id}", get(a.show))
	mux.Handle(APIPath+"/{id}/retry", post(a.retry))
	mux.Handle(APIPath+"/{id}/resolve", post(a.resolve))
	mux.Handle(APIPath+"/retry", post(a.retryMany))
	mux.Handle(APIPath+"/resolve", post(a.resolveMany))
	mux.Handle(APIPath+"/purge", post(a.purge))
	mux.HandleFunc(APIPath+"/", func(w http.ResponseWriter, r *http.Request) {
		httpserver.WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

type api struct {
	store  *Store
	logger *slog.Logger
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q, ok := httpserver.Query(w, r)
	if !ok {
		return
	}
	f, err := filterFromQuery(q, time.Now(), "after", "limit")
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	params := ListParams{Filter: f, After: q.Get("after")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a number", l))
			return
		}
		if n == 0 { // 0 means "default" in Go; given in a URL it is a mistake
			httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit 0 is not between 1 and %d", MaxListLimit))
			return
		}
		params.Limit = n
	}
	res, err := a.store.List(r.Context(), params)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for i, e := range res.Entries {
		res.Entries[i] = Redact(e)
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	q, ok := httpserver.Query(w, r)
	if !ok {
		return
	}
	f, err := filterFromQuery(q, time.Now(), "top")
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	params := StatsParams{Filter: f}
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxStatsTop {
			httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("top %q is not a number between 1 and %d", v, MaxStatsTop))
			return
		}
		params.Top = n
	}
	st, err := a.store.Stats(r.Context(), params)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, RedactStats(st))
}

func (a *api) show(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	q, ok := httpserver.Query(w, r)
	if !ok {
		return
	}
	for name := range q {
		httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (this route takes none)", name))
		return
	}
	e, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, Redact(e))
}

func (a *api) retry(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body struct {
		Force bool   `json:"force"`
		By    string `json:"by"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	res, err := a.store.Retry(r.Context(), RetryParams{ID: id, Force: body.Force, By: orActor(body.By)})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
}

func (a *api) resolve(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body struct {
		Note string `json:"note"`
		By   string `json:"by"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	e, err := a.store.Resolve(r.Context(), ResolveParams{ID: id, Note: body.Note, By: orActor(body.By)})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, Redact(e))
}

// bulkBody is the body of the bulk retry and resolve: a [Filter] whose
// since and until take the forms query strings and the CLI take.
type bulkBody struct {
	Kinds         []string `json:"kinds"`
	Classes       []string `json:"classes"`
	Statuses      []Status `json:"statuses"`
	OperationKeys []string `json:"operation_keys"`
	Fingerprints  []string `json:"fingerprints"`
	Since         string   `json:"since"`
	Until         string   `json:"until"`
	All           bool     `json:"all"`
	Force         bool     `json:"force"`
	DryRun        bool     `json:"dry_run"`
	By            string   `json:"by"`
	Note          string   `json:"note"`
}

// filter returns the body's filter, or a message naming the bad field.
func (b *bulkBody) filter(now time.Time) (Filter, error) {
	f := Filter{Kinds: b.Kinds, Classes: b.Classes, Statuses: b.Statuses, OperationKeys: b.OperationKeys, Fingerprints: b.Fingerprints}
	var err error
	if b.Since != "" {
		if f.Since, err = ParseSince(b.Since, now); err != nil {
			return Filter{}, fmt.Errorf("since: %w", err)
		}
	}
	if b.Until != "" {
		if f.Until, err = ParseSince(b.Until, now); err != nil {
			return Filter{}, fmt.Errorf("until: %w", err)
		}
	}
	return f, nil
}

// bulk decodes a bulk body and its filter; false when it answered 400.
func bulk(w http.ResponseWriter, r *http.Request) (*bulkBody, Filter, bool) {
	var body bulkBody
	if !decodeBody(w, r, &body) {
		return nil, Filter{}, false
	}
	f, err := body.filter(time.Now())
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, err.Error())
		return nil, Filter{}, false
	}
	return &body, f, true
}

func (a *api) retryMany(w http.ResponseWriter, r *http.Request) {
	body, filter, ok := bulk(w, r)
	if !ok {
		return
	}
	if !body.All {
		httpserver.WriteError(w, http.StatusBadRequest, `a bulk retry needs "all": true (with filters to narrow it)`)
		return
	}
	if body.Note != "" {
		httpserver.WriteError(w, http.StatusBadRequest, `"note" is not a field of a retry`)
		return
	}
	res, err := a.store.RetryMany(r.Context(), RetryManyParams{Filter: filter, Force: body.Force, DryRun: body.DryRun, By: orActor(body.By)})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
}

func (a *api) resolveMany(w http.ResponseWriter, r *http.Request) {
	body, filter, ok := bulk(w, r)
	if !ok {
		return
	}
	if !body.All {
		httpserver.WriteError(w, http.StatusBadRequest, `a bulk resolve needs "all": true (with filters to narrow it)`)
		return
	}
	if body.Force {
		httpserver.WriteError(w, http.StatusBadRequest, `"force" is not a field of a resolve`)
		return
	}
	res, err := a.store.ResolveMany(r.Context(), ResolveManyParams{Filter: filter, Note: body.Note, By: orActor(body.By), DryRun: body.DryRun})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
}

func (a *api) purge(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OlderThan string `json:"older_than"`
		DryRun    bool   `json:"dry_run"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	age, err := ParseAge(body.OlderThan)
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "older_than: "+err.Error())
		return
	}
	res, err := a.store.Purge(r.Context(), PurgeParams{OlderThan: age, DryRun: body.DryRun})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
}

// fail maps an operation's error to a status.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		httpserver.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		httpserver.WriteError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrAlreadyRetried), errors.Is(err, ErrResolved), errors.Is(err, ErrAlreadyResolved):
		httpserver.WriteError(w, http.StatusConflict, err.Error())
	case errors.Is(err, context.Canceled):
		httpserver.WriteError(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		a.logger.ErrorContext(r.Context(), "dead-letter admin API", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		httpserver.WriteError(w, http.StatusInternalServerError, "internal error (logged by the worker)")
	}
}

func orActor(by string) string {
	if strings.TrimSpace(by) == "" {
		return HTTPActor
	}
	return by
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 {
		httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("entry ID %q is not a positive integer", raw))
		return 0, false
	}
	return id, true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	// A POST takes its parameters in the body only: a ?dry_run=true beside
	// it must not be ignored while the body acts.
	if r.URL.RawQuery != "" {
		q, ok := httpserver.Query(w, r)
		if !ok {
			return false
		}
		for name := range q {
			httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (POST routes take their parameters in the JSON body)", name))
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "request body: "+bodyErrorMessage(err))
		return false
	}
	// encoding/json would turn these into U+FFFD without a word: refuse
	// them before decoding, so what is recorded is what was sent.
	if err := strictjson.CheckFields(body); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	// encoding/json keeps the last of two members of one name: refuse
	// them, so {"dry_run": true, "dry_run": false} does not act.
	if err := strictjson.CheckUnique(body); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return true // an empty body means defaults
		}
		httpserver.WriteError(w, http.StatusBadRequest, "request body: "+bodyErrorMessage(err))
		return false
	}
	// Token, not More: More lets a stray } or ] through.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		httpserver.WriteError(w, http.StatusBadRequest, "request body: unexpected data after the JSON object")
		return false
	}
	return true
}

// bodyErrorMessage says what is wrong with a body in JSON's words, not Go's.
func bodyErrorMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "must be a JSON object, not " + withArticle(te.Value)
		}
		return fmt.Sprintf("%q must be %s, not %s", te.Field, wantJSON(te.Field, te.Type), withArticle(te.Value))
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Sprintf("larger than %d bytes", mbe.Limit)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf(`not JSON (at byte %d): want an object like {"note": "...", "by": "..."}`, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return `not JSON (it ends before the object does): want an object like {"note": "...", "by": "..."}`
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func wantJSON(field string, t reflect.Type) string {
	switch {
	case field == "since" || field == "until":
		return "a string (RFC 3339 or an age such as 24h)"
	case field == "older_than":
		return "a string (an age such as 30d)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array of strings"
	case reflect.Int, reflect.Int64:
		return "an integer"
	}
	return "a " + t.Kind().String()
}

func withArticle(jsonType string) string {
	switch jsonType {
	case "array", "object":
		return "an " + jsonType
	case "bool":
		return "true or false"
	}
	return "a " + jsonType
}

// filterFromQuery reads the filter parameters of a query string; the
// route's own parameters (routeParams) are allowed too, any other is an
// error naming it.
func filterFromQuery(q map[string][]string, now time.Time, routeParams ...string) (Filter, error) {
	names := append([]string{"kind", "class", "status", "operation_key", "fingerprint", "since", "until"}, routeParams...)
	for k := range q {
		if !slices.Contains(names, k) {
			return Filter{}, fmt.Errorf("unknown query parameter %q (known: %s)", k, strings.Join(names, ", "))
		}
	}
	f := Filter{Kinds: q["kind"], Classes: q["class"], OperationKeys: q["operation_key"], Fingerprints: q["fingerprint"]}
	for _, s := range q["status"] {
		f.Statuses = append(f.Statuses, Status(s))
	}
	var err error
	if v := first(q["since"]); v != "" {
		if f.Since, err = ParseSince(v, now); err != nil {
			return Filter{}, fmt.Errorf("since: %w", err)
		}
	}
	if v := first(q["until"]); v != "" {
		if f.Until, err = ParseSince(v, now); err != nil {
			return Filter{}, fmt.Errorf("until: %w", err)
		}
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// ParseSince reads a point in time for a filter: an RFC 3339 time, or an
// age such as "24h" or "7d" (see [ParseAge]) meaning that long before now.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	age, err := ParseAge(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor an age such as 24h or 7d", s)
	}
	return now.Add(-age), nil
}
