package adminauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/adminauth"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	a := adminauth.NewSessions("0123456789abcdef-token", time.Hour)
	b := adminauth.NewSessions("0123456789abcdef-token", time.Hour) // another pod, same token
	other := adminauth.NewSessions("another-token-0123456789", time.Hour)
	value, exp := a.Issue(now)
	require.Equal(t, now.Add(time.Hour), exp)
	require.True(t, strings.HasPrefix(value, "v1.1796184000."), value)
	tampered := strings.Replace(value, "v1.1796184000.", "v1.1796187600.", 1)
	tests := []struct {
		name  string
		s     *adminauth.Sessions
		value string
		at    time.Time
		want  bool
	}{
		{"issuer", a, value, now, true},
		{"another pod with the same token", b, value, now.Add(59 * time.Minute), true},
		{"expired", a, value, now.Add(time.Hour), false},
		{"another token", other, value, now, false},
		{"expiry changed", a, tampered, now, false},
		{"empty", a, "", now, false},
		{"no MAC", a, "v1.1796184000", now, false},
		{"bad base64", a, "v1.1796184000.***", now, false},
		{"other version", a, "v2" + value[2:], now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.s.Valid(tt.value, tt.at))
		})
	}
	csrf := a.CSRFToken(value)
	require.True(t, b.CheckCSRF(value, csrf))
	require.False(t, a.CheckCSRF(value, ""))
	require.False(t, a.CheckCSRF(value, a.CSRFToken(tampered)))
	require.False(t, other.CheckCSRF(value, csrf))

	c := a.Cookie(value, exp, false)
	require.Equal(t, "rebound_session="+value+"; Path=/; Expires=Wed, 02 Dec 2026 04:00:00 GMT; HttpOnly; SameSite=Strict", c.String())
	require.Equal(t, "rebound_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict", a.Cookie("", time.Time{}, true).String())

	// Without a token the key is random per process.
	require.False(t, adminauth.NewSessions("", 0).Valid(func() string { v, _ := adminauth.NewSessions("", 0).Issue(now); return v }(), now))
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string]string
		want    bool
	}{
		{"no browser headers", nil, true},
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://console.test"}, true},
		{"typed", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"same-site other origin", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"other Origin", map[string]string{"Origin": "http://evil.test"}, false},
		{"null Origin", map[string]string{"Origin": "null"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "http://console.test/console/logout", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			require.Equal(t, tt.want, adminauth.SameOrigin(r))
		})
	}
}

func TestRequireWithSessions(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	s := adminauth.NewSessions(token, time.Hour)
	value, _ := s.Issue(time.Now())
	h := adminauth.Require(token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }),
		&adminauth.Opts{Sessions: s, LoginPath: "/console/login"})
	tests := []struct {
		name, method, cookie, auth, accept, site string
		wantCode                                 int
		wantLocation                             string
	}{
		{name: "session", method: "GET", cookie: value, wantCode: 200},
		{name: "session POST same-origin", method: "POST", cookie: value, site: "same-origin", wantCode: 200},
		{name: "session POST cross-site", method: "POST", cookie: value, site: "cross-site", wantCode: 403},
		{name: "bearer POST cross-site", method: "POST", auth: "Bearer " + token, site: "cross-site", wantCode: 200},
		{name: "browser without session", method: "GET", accept: "text/html,*/*", wantCode: 303, wantLocation: "/console/login?next=%2Friverui%2Fjobs"},
		{name: "API client without credentials", method: "GET", wantCode: 401},
		{name: "basic auth no longer accepted", method: "GET", auth: "Basic dTowMTIzNDU2Nzg5YWJjZGVmLXRva2Vu", wantCode: 401},
		{name: "forged session", method: "GET", cookie: "v1.9999999999.AAAA", wantCode: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "http://pod.test/riverui/jobs", nil)
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: adminauth.SessionCookie, Value: tt.cookie})
			}
			for k, v := range map[string]string{"Authorization": tt.auth, "Accept": tt.accept, "Sec-Fetch-Site": tt.site} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, tt.wantCode, w.Code, w.Body.String())
			require.Equal(t, tt.wantLocation, w.Header().Get("Location"))
		})
	}
}
