package adminauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SessionCookie is the name of the console's session cookie. Its path is
// "/", so it covers /console/ and /riverui/.
const SessionCookie = "rebound_session"

// DefaultSessionTTL is how long a session lasts when NewSessions is given 0.
const DefaultSessionTTL = 8 * time.Hour

// sessionLabel derives the session key from the admin token: key =
// HMAC-SHA256(token, sessionLabel). Changing the label (or the token)
// ends every session.
const sessionLabel = "rebound console session v1"

// Sessions issues and checks the console's browser sessions. A session is
// stateless: the cookie value is "v1.<expiry, Unix seconds>.<MAC>", the MAC
// being HMAC-SHA256 over "v1.<expiry>" with a key derived from the admin
// token, so every pod holding the same token accepts it, and changing the
// token ends every session. Its CSRF token is an HMAC of the cookie value
// under the same key. Without a token the key is random, per process (the
// console is then served to loopback clients only, as every admin route).
// Safe for concurrent use.
type Sessions struct {
	key []byte
	ttl time.Duration
}

// NewSessions returns the sessions of the admin token; ttl is a session's
// lifetime, 0 meaning DefaultSessionTTL. token "" gets a random key.
func NewSessions(token string, ttl time.Duration) *Sessions {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	var key []byte
	if token == "" {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails (crypto/rand panics rather)
	} else {
		m := hmac.New(sha256.New, []byte(token))
		m.Write([]byte(sessionLabel))
		key = m.Sum(nil)
	}
	return &Sessions{key: key, ttl: ttl}
}

// TTL is a session's lifetime.
func (s *Sessions) TTL() time.Duration { return s.ttl }

func (s *Sessions) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Issue returns a new session cookie value valid until now + TTL, and that
// expiry (whole seconds).
func (s *Sessions) Issue(now time.Time) (string, time.Time) {
	exp := now.Add(s.ttl).Truncate(time.Second)
	body := "v1." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", body)), exp
}

// Valid reports whether value is a session this key issued that has not
// expired at now. The MAC is compared in constant time.
func (s *Sessions) Valid(value string, now time.Time) bool {
	i := strings.LastIndexByte(value, '.')
	if i < 0 || !strings.HasPrefix(value, "v1.") {
		return false
	}
	body, sig := value[:i], value[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("session", body)) {
		return false
	}
	exp, err := strconv.ParseInt(strings.TrimPrefix(body, "v1."), 10, 64)
	return err == nil && now.Unix() < exp
}

// FromRequest returns the request's session cookie value when it is a valid
// session.
func (s *Sessions) FromRequest(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || !s.Valid(c.Value, time.Now()) {
		return "", false
	}
	return c.Value, true
}

// CSRFToken is the CSRF token of a session: base64url(HMAC-SHA256(key,
// "csrf", session)). Forms carry it in a hidden field.
func (s *Sessions) CSRFToken(session string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", session))
}

// CheckCSRF reports whether presented is session's CSRF token (constant
// time).
func (s *Sessions) CheckCSRF(session, presented string) bool {
	want := s.CSRFToken(session)
	return subtle.ConstantTimeCompare([]byte(want), []byte(presented)) == 1
}

// Cookie returns the session cookie: HttpOnly, SameSite=Strict, path "/",
// Secure when secure, expiring at expires. An empty value with a zero
// expiry is the cookie that logs out (MaxAge -1).
func (s *Sessions) Cookie(value string, expires time.Time, secure bool) *http.Cookie {
	c := &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	return c
}

// SameOrigin reports whether a browser request comes from the page's own
// origin, by the headers browsers send: Sec-Fetch-Site must be
// "same-origin" or "none" (typed, bookmarked) when present, and Origin,
// when present, must have the request's Host. A request with neither
// header (a non-browser client) passes: it cannot carry a browser's cookie
// by accident.
func SameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || o == "null" || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	return true
}

// safeMethod reports the methods that change nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
