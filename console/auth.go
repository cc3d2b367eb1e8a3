package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rebound-queue/rebound/internal/adminauth"
)

// LoginFailuresPerMinute is how many wrong tokens one client address may
// send in a minute; the next attempts that minute get 429.
const LoginFailuresPerMinute = 10

type loginData struct {
	Next string
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps a redirect after login on this site: a path under the
// console or the River UI, else the overview.
func safeNext(next string) string {
	if (strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "/riverui/")) && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return Prefix + "/"
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !c.allowed(w, r) {
		return
	}
	v := &view{Title: "Log in", Open: c.cfg.Token == "", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}}
	if _, ok := c.cfg.Sessions.FromRequest(r); ok {
		v.Notice = "You are logged in already."
	}
	c.render(w, r, http.StatusOK, "login", v)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.allowed(w, r) {
		return
	}
	v := &view{Title: "Log in", Open: c.cfg.Token == ""}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, v, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	v.Data = loginData{Next: next}
	if !adminauth.SameOrigin(r) {
		c.fail(w, r, v, http.StatusForbidden, "Cross-site login refused (Origin / Sec-Fetch-Site is not this site).")
		return
	}
	client := clientIP(r)
	if c.cfg.Token != "" {
		if !c.limiter.allow(client, time.Now()) {
			w.Header().Set("Retry-After", "60")
			v.Error = "Too many wrong tokens from your address: wait a minute and try again."
			c.render(w, r, http.StatusTooManyRequests, "login", v)
			return
		}
		got := sha256.Sum256([]byte(r.PostForm.Get("token")))
		want := sha256.Sum256([]byte(c.cfg.Token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			c.limiter.fail(client, time.Now())
			c.log.Info("console: login refused: wrong admin token", "client", client)
			v.Error = "Wrong admin token. Paste the value of " + adminauth.EnvToken + " the workers run with."
			c.render(w, r, http.StatusUnauthorized, "login", v)
			return
		}
	}
	value, exp := c.cfg.Sessions.Issue(time.Now())
	http.SetCookie(w, c.cfg.Sessions.Cookie(value, exp, c.secure(r)))
	c.log.Info("console: logged in", "client", client, "expires", exp.UTC().Format(time.RFC3339))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, v *view) {
	http.SetCookie(w, c.cfg.Sessions.Cookie("", time.Time{}, c.secure(r)))
	c.log.Info("console: logged out", "client", clientIP(r))
	v.Session, v.CSRF = false, ""
	v.Title, v.Notice, v.Data = "Logged out", "You are logged out.", loginData{Next: Prefix + "/"}
	c.render(w, r, http.StatusOK, "login", v)
}

// clientIP is the request's remote address without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginLimiter counts wrong tokens per client address per minute.
type loginLimiter struct {
	mu       sync.Mutex
	failures map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{failures: map[string]*window{}} }

func (l *loginLimiter) allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.failures[client]
	return w == nil || now.Sub(w.start) >= time.Minute || w.n < LoginFailuresPerMinute
}

func (l *loginLimiter) fail(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 10000 { // bounded memory: forget old windows
		for k, w := range l.failures {
			if now.Sub(w.start) >= time.Minute {
				delete(l.failures, k)
			}
		}
	}
	w := l.failures[client]
	if w == nil || now.Sub(w.start) >= time.Minute {
		l.failures[client] = &window{start: now, n: 1}
		return
	}
	w.n++
}
