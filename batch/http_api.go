package batch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

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
// Errors are {"error": "..."}: 400 for a bad id or parameter, 404 for an
// unknown batch, 500 otherwise (logged to logger, which may be nil).
// Authentication is the caller's: mount it behind the admin token check.
func NewHandler(db Querier, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	list := func(w http.ResponseWriter, r *http.Request) {
		opts := ListOpts{}
		q := r.URL.Query()
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
	mux.HandleFunc(APIPath+"/", func(w http.ResponseWriter, r *http.Request) {
		httpserver.WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// ParseID parses a batch ID: a positive integer.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("invalid batch ID %q: want a positive integer", s)
	}
	return id, nil
}
