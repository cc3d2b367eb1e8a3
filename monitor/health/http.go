package health

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rebound-queue/rebound/internal/httpserver"
	"github.com/rebound-queue/rebound/monitor/alert"
)

// Path is the route of the job-health document.
const Path = "/api/admin/job-health"

// NewHandler serves GET Path with c's report as JSON (200). A window query
// parameter ("?window=1h" or seconds, 1m to 720h) overrides the checker's
// window; a bad or repeated one is a 400 naming it. Other methods get 405; a database
// error a 503. Mount it behind the admin token.
func NewHandler(c *Checker, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path {
			httpserver.WriteError(w, http.StatusNotFound, "no route "+r.URL.Path+" (the job-health document is at "+Path+")")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpserver.WriteError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+Path+": use GET")
			return
		}
		q, ok := httpserver.Query(w, r)
		if !ok {
			return
		}
		for name, values := range q {
			if name != "window" {
				httpserver.WriteError(w, http.StatusBadRequest, "unknown query parameter "+quote(name)+" (only window)")
				return
			}
			if len(values) > 1 {
				httpserver.WriteError(w, http.StatusBadRequest, "window given "+strconv.Itoa(len(values))+" times (give it once)")
				return
			}
		}
		checker := *c
		if v := q.Get("window"); v != "" || q.Has("window") {
			d, err := alert.ParseSeconds(v)
			if err == nil && (d < time.Minute || d > 30*24*time.Hour) {
				err = errWindow
			}
			if err != nil {
				httpserver.WriteError(w, http.StatusBadRequest, "window "+quote(v)+": a duration from 1m to 720h (e.g. 15m, or 900 seconds)")
				return
			}
			checker.Window = d
		}
		rep, err := checker.Check(r.Context())
		if err != nil {
			logger.Warn("job health: database error", "error", err.Error())
			httpserver.WriteError(w, http.StatusServiceUnavailable, "job health unavailable: the database did not answer")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(rep)
	})
}

type windowError struct{}

func (windowError) Error() string { return "out of range" }

var errWindow = windowError{}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(strings.ToValidUTF8(s, "\uFFFD"))
	return string(b)
}
