package batch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/rebound-queue/rebound/internal/httpserver"
)

// APIPath is where [NewHandler] serves the admin API. Mount the handler at
// APIPath and APIPath+"/" behind the admin authentication.
const APIPath = "/api/admin/batches"

// NewHandler returns the batches' admin HTTP API, JSON out:
//
//	GET /api/admin/batches        ?limit= (1-1000, default 50), ?open=true -> {"batches": [Summary...]}
//	GET /api/admin/batches/{id}   -> Summary
//
// Errors are {"error": "..."}: 400 for a bad id, a bad, repeated or
// unknown query parameter, 404 for an unknown batch or path, 405 for a
// method other than GET (or HEAD), 500 otherwise (logged to logger, which
// may be nil).
// Authentication is the caller's: mount it behind the admin token check.
func NewHandler(db Querier, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	list := func(w http.ResponseWriter, r *http.Request) {
		opts := ListOpts{}
		q, ok := httpserver.Query(w, r)
		if !ok {
			return
		}
		if msg := checkQuery(q, "limit", "open"); msg != "" {
			httpserver.WriteError(w, http.StatusBadRequest, msg)
			return
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("invalid limit %q: want a number from 1 to 1000", v))
				return
			}
			opts.Limit = n
		}
		if v := q.Get("open"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				httpserver.WriteError(w, http.StatusBadRequest, fmt.Sprintf("invalid open %q: want true or false", v))
				return
			}
			opts.Open = b
		}
		out, err := List(r.Context(), db, opts)
		if err != nil {
			logger.ErrorContext(r.Context(), "list batches", "error", err)
			httpserver.WriteError(w, http.StatusInternalServerError, "could not list batches")
			return
		}
		httpserver.WriteJSON(w, http.StatusOK, map[string]any{"batches": out})
	}
	mux.HandleFunc("GET "+APIPath, list)
	mux.HandleFunc("GET "+APIPath+"/{$}", list)
	mux.HandleFunc("GET "+APIPath+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseID(r.PathValue("id"))
		if err != nil {
			httpserver.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		q, ok := httpserver.Query(w, r)
		if !ok {
			return
		}
		if msg := checkQuery(q); msg != "" {
			httpserver.WriteError(w, http.StatusBadRequest, msg)
			return
		}
		s, err := GetSummary(r.Context(), db, id)
		switch {
		case errors.Is(err, ErrNotFound):
			httpserver.WriteError(w, http.StatusNotFound, err.Error())
		case err != nil:
			logger.ErrorContext(r.Context(), "show batch", "batch_id", id, "error", err)
			httpserver.WriteError(w, http.StatusInternalServerError, "could not read the batch")
		default:
			httpserver.WriteJSON(w, http.StatusOK, s)
		}
	})
	// What GET does not match: another method on a route (405), or no route.
	other := func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.Path, APIPath)
		if rest == "" || rest == "/" || !strings.Contains(rest[1:], "/") {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				httpserver.WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s: use GET", r.Method, r.URL.Path))
				return
			}
		}
		httpserver.WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	}
	mux.HandleFunc(APIPath, other)
	mux.HandleFunc(APIPath+"/", other)
	return mux
}

// checkQuery returns the message for a query parameter not in known, or
// one given more than once; "" when q is fine.
func checkQuery(q url.Values, known ...string) string {
	for name, values := range q {
		switch {
		case !slices.Contains(known, name) && len(known) == 0:
			return fmt.Sprintf("unknown query parameter %q (this route takes none)", name)
		case !slices.Contains(known, name):
			return fmt.Sprintf("unknown query parameter %q (known: %s)", name, strings.Join(known, ", "))
		case len(values) > 1:
			return fmt.Sprintf("query parameter %q given %d times (give it once)", name, len(values))
		}
	}
	return ""
}

// ParseID parses a batch ID: a positive integer.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("invalid batch ID %q: want a positive integer", s)
	}
	return id, nil
}
