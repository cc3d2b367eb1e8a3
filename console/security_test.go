package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/console"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/health"
)

// TestSecurity checks the console's security model over HTTP on a real
// pod: the login, the cookie, CSRF and origin checks on every POST (a
// refused POST changes nothing), the River UI under the same session, the
// rate limit, and that the Bearer API is unchanged.
func TestSecurity(t *testing.T) {
	t.Parallel()
	p := startPod(t)
	seedDeadLetters(t, p.pool, 6, time.Minute, []string{"server_error", "rate_limited"}, []string{"payments", "mail"})
	var id int64
	require.NoError(t, p.pool.QueryRow(context.Background(), `SELECT min(id) FROM job_dead_letter_queue`).Scan(&id))
	resolveURL := sprintf("%s/console/dlq/%d/resolve", p.url, id)
	unresolved := func() int {
		return count(t, p.pool, `SELECT count(*) FROM job_dead_letter_queue WHERE id = $1 AND status = 'unresolved'`, id)
	}

	t.Run("login", func(t *testing.T) {
		c := client(t)
		r := do(t, c, http.MethodGet, p.url+"/console/dlq?class=server_error", nil, nil)
		require.Equal(t, http.StatusSeeOther, r.code)
		require.Equal(t, "/console/login?next=%2Fconsole%2Fdlq%3Fclass%3Dserver_error", r.header.Get("Location"))

		r = do(t, c, http.MethodPost, p.url+"/console/login", url.Values{"token": {"wrong-token-0123456789"}, "next": {"/console/"}}, nil)
		require.Equal(t, http.StatusUnauthorized, r.code)
		require.Contains(t, r.body, "Wrong admin token. Paste the value of REBOUND_ADMIN_TOKEN the workers run with.")
		require.Empty(t, r.header.Values("Set-Cookie"))

		r = do(t, c, http.MethodPost, p.url+"/console/login", url.Values{"token": {testToken}, "next": {"https://evil.test/"}}, nil)
		require.Equal(t, http.StatusSeeOther, r.code)
		require.Equal(t, "/console/", r.header.Get("Location"), "next outside the console is ignored")
		set := r.header.Get("Set-Cookie")
		require.Regexp(t, `^rebound_session=v1\.\d+\.[A-Za-z0-9_-]{43}; Path=/; Expires=[^;]+; HttpOnly; SameSite=Strict$`, set)
		require.NotContains(t, set, testToken)

		r = do(t, c, http.MethodGet, p.url+"/console/", nil, nil)
		require.Equal(t, http.StatusOK, r.code)
		require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'none'")
		require.NotContains(t, r.body, testToken)

		r = do(t, c, http.MethodPost, p.url+"/console/login", url.Values{"token": {testToken}}, map[string]string{"Origin": "http://evil.test"})
		require.Equal(t, http.StatusForbidden, r.code, "login from another site")
	})

	t.Run("CSRF and origin", func(t *testing.T) {
		c := client(t)
		login(t, c, p.url)
		page := do(t, c, http.MethodGet, sprintf("%s/console/dlq/%d", p.url, id), nil, nil)
		require.Equal(t, http.StatusOK, page.code)
		csrf := csrfOf(t, page.body)
		tests := []struct {
			name     string
			form     url.Values
			hdr      map[string]string
			wantCode int
			wantText string
		}{
			{"no CSRF token", url.Values{"note": {"x"}}, nil, 403, "Missing or wrong CSRF token"},
			{"wrong CSRF token", url.Values{"note": {"x"}, "csrf": {csrf[:len(csrf)-2] + "AA"}}, nil, 403, "Missing or wrong CSRF token"},
			{"cross-site", url.Values{"note": {"x"}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "Cross-site request refused"},
			{"other origin", url.Values{"note": {"x"}, "csrf": {csrf}}, map[string]string{"Origin": "http://evil.test"}, 403, "Cross-site request refused"},
			{"empty note", url.Values{"note": {"  "}, "csrf": {csrf}}, nil, 400, "a note is required"},
			{"note over 1024 bytes", url.Values{"note": {strings.Repeat("n", 1025)}, "csrf": {csrf}}, nil, 400, "note: 1025 bytes, longer than 1024"},
		}
		for _, tt := range tests {
			r := do(t, c, http.MethodPost, resolveURL, tt.form, tt.hdr)
			require.Equal(t, tt.wantCode, r.code, tt.name)
			require.Contains(t, r.body, tt.wantText, tt.name)
			require.Equal(t, 1, unresolved(), tt.name+": nothing changed")
		}
		r := do(t, client(t), http.MethodPost, resolveURL, url.Values{"note": {"x"}, "csrf": {csrf}}, nil)
		require.Equal(t, http.StatusUnauthorized, r.code, "a CSRF token without the session")
		require.Equal(t, 1, unresolved())

		r = do(t, c, http.MethodPost, resolveURL, url.Values{"note": {"upstream fixed"}, "csrf": {csrf}}, map[string]string{"Origin": p.url, "Sec-Fetch-Site": "same-origin"})
		require.Equal(t, http.StatusOK, r.code, r.body)
		require.Equal(t, 1, count(t, p.pool, `SELECT count(*) FROM job_dead_letter_queue WHERE id = $1 AND status = 'resolved' AND resolution_note = 'upstream fixed' AND resolved_by = 'console'`, id))
	})

	t.Run("bulk retry preview is exact", func(t *testing.T) {
		c := client(t)
		login(t, c, p.url)
		csrf := csrfOf(t, do(t, c, http.MethodGet, p.url+"/console/dlq", nil, nil).body)
		form := url.Values{"csrf": {csrf}, "class": {"rate_limited"}, "key": {"mail"}}
		// Seeded: g % 2 picks the class and the key together, so
		// rate_limited+mail is g odd: entries 1, 3 and 5; 1 was resolved
		// above, so 2 are left to retry.
		r := do(t, c, http.MethodPost, p.url+"/console/dlq/retry", form, nil)
		require.Equal(t, http.StatusOK, r.code, r.body)
		require.Contains(t, r.body, "this would retry <strong>2</strong> entries")
		require.Equal(t, 0, count(t, p.pool, `SELECT count(*) FROM river_job WHERE kind = 'console_test_job'`), "dry run")
		form.Set("confirm", "1")
		r = do(t, c, http.MethodPost, p.url+"/console/dlq/retry", form, nil)
		require.Equal(t, http.StatusOK, r.code, r.body)
		require.Contains(t, r.body, "2 dead letters retried")
		require.Equal(t, 2, count(t, p.pool, `SELECT count(*) FROM river_job WHERE kind = 'console_test_job' AND queue = 'held'`))
		require.Equal(t, 2, count(t, p.pool, `SELECT count(*) FROM job_dead_letter_queue WHERE status = 'retried' AND retried_by = 'console'`))
	})

	t.Run("River UI under the session", func(t *testing.T) {
		c := client(t)
		r := do(t, c, http.MethodGet, p.url+"/riverui/", nil, map[string]string{"Accept": "text/html"})
		require.Equal(t, http.StatusSeeOther, r.code)
		require.Equal(t, "/console/login?next=%2Friverui%2F", r.header.Get("Location"))
		req, _ := http.NewRequest(http.MethodGet, p.url+"/riverui/", nil)
		req.SetBasicAuth("admin", testToken)
		res, err := c.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "basic auth, which browsers replay, is refused")
		login(t, c, p.url)
		r = do(t, c, http.MethodGet, p.url+"/riverui/", nil, map[string]string{"Accept": "text/html"})
		require.Equal(t, http.StatusOK, r.code)
		// A session issued by another pod with the same token.
		other, _ := adminauth.NewSessions(testToken, 0).Issue(time.Now())
		req, _ = http.NewRequest(http.MethodGet, p.url+"/riverui/api/queues", nil)
		req.AddCookie(&http.Cookie{Name: adminauth.SessionCookie, Value: other})
		res, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		// The JSON API keeps Bearer and takes no cookie.
		r = do(t, c, http.MethodGet, p.url+"/api/admin/dlq", nil, nil)
		require.Equal(t, http.StatusUnauthorized, r.code)
		r = do(t, c, http.MethodGet, p.url+"/api/admin/dlq", nil, map[string]string{"Authorization": "Bearer " + testToken})
		require.Equal(t, http.StatusOK, r.code)
	})

	t.Run("logout", func(t *testing.T) {
		c := client(t)
		login(t, c, p.url)
		page := do(t, c, http.MethodGet, p.url+"/console/", nil, nil)
		r := do(t, c, http.MethodPost, p.url+"/console/logout", url.Values{"csrf": {csrfOf(t, page.body)}}, nil)
		require.Equal(t, http.StatusOK, r.code)
		require.Equal(t, "rebound_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict", r.header.Get("Set-Cookie"))
		r = do(t, c, http.MethodGet, p.url+"/console/", nil, nil)
		require.Equal(t, http.StatusSeeOther, r.code)
	})

	t.Run("rate limit", func(t *testing.T) {
		c := client(t)
		// The pod's limiter is per client address, shared by the
		// subtests: earlier subtests sent one wrong token.
		codes := []int{}
		for range console.LoginFailuresPerMinute + 1 {
			codes = append(codes, do(t, c, http.MethodPost, p.url+"/console/login", url.Values{"token": {"wrong-token-0123456789"}}, nil).code)
		}
		require.Equal(t, http.StatusUnauthorized, codes[0])
		require.Equal(t, http.StatusTooManyRequests, codes[len(codes)-1])
		r := do(t, c, http.MethodPost, p.url+"/console/login", url.Values{"token": {testToken}}, nil)
		require.Equal(t, http.StatusTooManyRequests, r.code, "even the right token waits out the minute")
	})
}

// TestSecureCookie: the cookie is Secure with the flag, or with a trusted
// X-Forwarded-Proto: https, and not on plain HTTP otherwise.
func TestSecureCookie(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	newServer := func(secure, trust bool) string {
		return serveConsole(t, db, func(c *console.Config) { c.SecureCookie, c.TrustForwardedProto = secure, trust }).URL
	}
	plain, flag, trusted := newServer(false, false), newServer(true, false), newServer(false, true)
	tests := []struct {
		name, base, proto string
		wantSecure        bool
	}{
		{"plain HTTP", plain, "", false},
		{"untrusted X-Forwarded-Proto", plain, "https", false},
		{"flag", flag, "", true},
		{"trusted X-Forwarded-Proto", trusted, "https", true},
		{"trusted, proxy says http", trusted, "http", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hdr := map[string]string{}
			if tt.proto != "" {
				hdr["X-Forwarded-Proto"] = tt.proto
			}
			r := do(t, client(t), http.MethodPost, tt.base+"/console/login", url.Values{"token": {testToken}}, hdr)
			require.Equal(t, http.StatusSeeOther, r.code)
			require.Equal(t, tt.wantSecure, strings.Contains(r.header.Get("Set-Cookie"), "; Secure"), r.header.Get("Set-Cookie"))
		})
	}
}

// TestWithoutToken: without an admin token the console follows adminauth's
// loopback rule; the login is a button, and POSTs still need the CSRF
// token.
func TestWithoutToken(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	dlq, err := deadletter.New(db.Pool, nil)
	require.NoError(t, err)
	con, err := console.New(console.Config{Pool: db.Pool, DLQ: dlq, Breakers: breaker.NewStore(db.Pool), Health: &health.Checker{DB: db.Pool},
		Sessions: adminauth.NewSessions("", 0)})
	require.NoError(t, err)

	remote := httptest.NewRequest(http.MethodGet, "http://pod.test/console/login", nil)
	remote.RemoteAddr = "10.1.2.3:4567"
	w := httptest.NewRecorder()
	con.ServeHTTP(w, remote)
	require.Equal(t, http.StatusForbidden, w.Code)
	require.Contains(t, w.Body.String(), "The console without REBOUND_ADMIN_TOKEN is served to loopback clients only.")

	srv := httptest.NewServer(con) // a loopback address
	t.Cleanup(srv.Close)
	c := client(t)
	r := do(t, c, http.MethodGet, srv.URL+"/console/login", nil, nil)
	require.Equal(t, http.StatusOK, r.code)
	require.NotContains(t, r.body, `name="token"`)
	r = do(t, c, http.MethodPost, srv.URL+"/console/login", url.Values{}, nil)
	require.Equal(t, http.StatusSeeOther, r.code)
	r = do(t, c, http.MethodGet, srv.URL+"/console/breakers", nil, nil)
	require.Equal(t, http.StatusOK, r.code)
	r = do(t, c, http.MethodPost, srv.URL+"/console/logout", url.Values{}, nil)
	require.Equal(t, http.StatusForbidden, r.code, "no CSRF token")
}
