package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/monitor/health"
)

// Prefix is the path the console is served under; mount the handler at
// Prefix+"/".
const Prefix = "/console"

// LoginPath is the console's login page.
const LoginPath = Prefix + "/login"

// Actor is recorded as retried_by / resolved_by / changed_by for what is
// done in the console.
const Actor = "console"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the console. Pool, DLQ, Breakers, Health and Sessions
// are required.
type Config struct {
	// Pool is the database.
	Pool *pgxpool.Pool
	// DLQ is the dead-letter store (its retries insert through the pod's
	// client).
	DLQ *deadletter.Store
	// Breakers is the circuit breakers' store.
	Breakers *breaker.Store
	// Health builds the job-health report (overall health, alerts now).
	Health *health.Checker
	// Snapshots reads the queue depth the queue metrics share; nil leaves
	// queue depth out of the overview.
	Snapshots *monitor.Snapshots
	// Token is the admin token; "" serves the console to loopback clients
	// only (adminauth's rule).
	Token string
	// Sessions issues and checks the session cookie (give the River UI the
	// same value so the session opens it).
	Sessions *adminauth.Sessions
	// SecureCookie marks the session cookie Secure even on plain HTTP: set
	// it when a TLS-terminating proxy serves the console. Requests over TLS
	// get a Secure cookie anyway.
	SecureCookie bool
	// TrustForwardedProto marks the cookie Secure when the request carries
	// X-Forwarded-Proto: https. Set it only behind a proxy that sets (and
	// overwrites) that header.
	TrustForwardedProto bool
	// Logger gets logins, logouts, actions (info) and unexpected errors.
	// nil discards.
	Logger *slog.Logger
}

// Console serves the console's pages. Build it with New.
type Console struct {
	cfg     Config
	log     *slog.Logger
	pages   map[string]*template.Template
	mux     *http.ServeMux
	limiter *loginLimiter
}

// New builds the console. Errors name a missing Config field or a template
// that does not parse.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("console: Config.Pool is required")
	case cfg.DLQ == nil:
		return nil, errors.New("console: Config.DLQ is required")
	case cfg.Breakers == nil:
		return nil, errors.New("console: Config.Breakers is required")
	case cfg.Health == nil:
		return nil, errors.New("console: Config.Health is required")
	case cfg.Sessions == nil:
		return nil, errors.New("console: Config.Sessions is required")
	}
	c := &Console{cfg: cfg, log: cfg.Logger, limiter: newLoginLimiter()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	return c, nil
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET "+LoginPath, c.loginPage)
	m.HandleFunc("POST "+LoginPath, c.login)
	m.Handle("POST "+Prefix+"/logout", c.post(c.logout))

	m.Handle("GET "+Prefix+"/{$}", c.get(c.overview))
	m.Handle("GET "+Prefix+"/dlq", c.get(c.dlqList))
	m.Handle("GET "+Prefix+"/dlq/{id}", c.get(c.dlqEntry))
	m.Handle("POST "+Prefix+"/dlq/{id}/retry", c.post(c.dlqRetryOne))
	m.Handle("POST "+Prefix+"/dlq/{id}/resolve", c.post(c.dlqResolveOne))
	m.Handle("POST "+Prefix+"/dlq/retry", c.post(c.dlqRetryMany))
	m.Handle("POST "+Prefix+"/dlq/resolve", c.post(c.dlqResolveMany))
	m.Handle("GET "+Prefix+"/breakers", c.get(c.breakers))
	m.Handle("GET "+Prefix+"/breakers/confirm", c.get(c.breakerConfirm))
	m.Handle("POST "+Prefix+"/breakers/reset", c.post(c.breakerReset))
	m.Handle("POST "+Prefix+"/breakers/open", c.post(c.breakerOpen))
	m.Handle("GET "+Prefix+"/batches", c.get(c.batches))
	m.Handle("GET "+Prefix+"/batches/{id}", c.get(c.batchShow))
	m.Handle("GET "+Prefix+"/alerts", c.get(c.alerts))
	m.Handle(Prefix+"/", c.get(func(w http.ResponseWriter, r *http.Request, v *view) {
		c.fail(w, r, v, http.StatusNotFound, "No console page at "+r.URL.Path+".")
	}))
	c.mux = m
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form posts, which SameOrigin refuses.
	h.Set("Referrer-Policy", "same-origin")
	if r.URL.Path == Prefix {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// view is what every page's template gets: the layout's data and the
// page's own.
type view struct {
	Title   string
	Nav     string
	CSRF    string
	Session bool
	Open    bool // no admin token: loopback-only console
	Data    any
	Status  int
	Error   string
	Notice  string
}

type pageFunc func(w http.ResponseWriter, r *http.Request, v *view)

// allowed applies adminauth's loopback rule when there is no token.
func (c *Console) allowed(w http.ResponseWriter, r *http.Request) bool {
	if c.cfg.Token == "" && !adminauth.IsLoopback(r.RemoteAddr) {
		c.render(w, r, http.StatusForbidden, "error", &view{Title: "Forbidden", Open: true,
			Error: "The console without " + adminauth.EnvToken + " is served to loopback clients only."})
		return false
	}
	return true
}

// session returns the request's valid session, or sends the browser to the
// login page.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !c.allowed(w, r) {
		return "", false
	}
	s, ok := c.cfg.Sessions.FromRequest(r)
	if !ok {
		http.Redirect(w, r, LoginPath+"?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return "", false
	}
	return s, true
}

// get guards a page that reads.
func (c *Console) get(f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.session(w, r)
		if !ok {
			return
		}
		f(w, r, &view{CSRF: c.cfg.Sessions.CSRFToken(s), Session: true, Open: c.cfg.Token == ""})
	})
}

// post guards an action: a valid session, the same origin, the session's
// CSRF token in the form; else 403 and nothing done.
func (c *Console) post(f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.allowed(w, r) {
			return
		}
		v := &view{Open: c.cfg.Token == ""}
		s, ok := c.cfg.Sessions.FromRequest(r)
		if !ok {
			c.fail(w, r, v, http.StatusUnauthorized, "Your session has expired or is missing: log in again. Nothing was changed.")
			return
		}
		v.Session, v.CSRF = true, c.cfg.Sessions.CSRFToken(s)
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !adminauth.SameOrigin(r) {
			c.fail(w, r, v, http.StatusForbidden, "Cross-site request refused (Origin / Sec-Fetch-Site is not this site). Nothing was changed.")
			return
		}
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, v, http.StatusBadRequest, "The form could not be read: "+err.Error()+". Nothing was changed.")
			return
		}
		if !c.cfg.Sessions.CheckCSRF(s, r.PostForm.Get("csrf")) {
			c.fail(w, r, v, http.StatusForbidden, "Missing or wrong CSRF token: reload the page and try again. Nothing was changed.")
			return
		}
		f(w, r, v)
	})
}

// render executes a page into a buffer first, so a template error never
// sends half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no template "+page, http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.log.Error("console: template failed", "page", page, "error", err.Error())
		http.Error(w, "the page could not be drawn (see the worker's log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// fail shows an error page with status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *view, status int, msg string) {
	v.Title, v.Error, v.Status = http.StatusText(status), msg, status
	c.render(w, r, status, "error", v)
}

// failErr shows err: 400 for invalid input (the stores' ErrInvalid), 404
// for a missing entry, 409 for an entry in the wrong status, 500 otherwise
// (logged, with a short message).
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, v *view, err error) {
	switch {
	case errors.Is(err, deadletter.ErrInvalid), errors.Is(err, breaker.ErrInvalidKey):
		c.fail(w, r, v, http.StatusBadRequest, consoleForce(err.Error())+". Nothing was changed.")
	case errors.Is(err, deadletter.ErrNotFound), errors.Is(err, breaker.ErrNotFound):
		c.fail(w, r, v, http.StatusNotFound, err.Error()+".")
	case errors.Is(err, deadletter.ErrAlreadyRetried), errors.Is(err, deadletter.ErrResolved), errors.Is(err, deadletter.ErrAlreadyResolved):
		c.fail(w, r, v, http.StatusConflict, consoleForce(err.Error())+". Nothing was changed.")
	case errors.Is(err, context.Canceled):
		return
	default:
		c.log.Error("console: request failed", "path", r.URL.Path, "error", err.Error())
		c.fail(w, r, v, http.StatusInternalServerError, "The database request failed (see the worker's log).")
	}
}

// consoleForce rewrites the store's "use force" hint, which the console's
// forms do not offer, into the command that does.
func consoleForce(msg string) string {
	msg = strings.Replace(msg, "use force to", "rebound dlq retry --force (not offered here) can", 1)
	return strings.Replace(msg, "needs force", "needs rebound dlq retry --force (not offered here)", 1)
}

// secure reports whether the session cookie gets the Secure attribute.
func (c *Console) secure(r *http.Request) bool {
	return r.TLS != nil || c.cfg.SecureCookie ||
		(c.cfg.TrustForwardedProto && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
}

// timeout bounds a page's database work.
func pageContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 15*time.Second)
}
