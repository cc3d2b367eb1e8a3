// Package adminauth guards the worker's admin routes (/api/admin/..., the
// River UI at /riverui/) with the shared admin token.
//
// # Rules
//
//   - With a token (REBOUND_ADMIN_TOKEN) every request must carry
//     `Authorization: Bearer <token>`; the River UI also accepts HTTP basic
//     auth with the token as the password (any user name), so a browser can
//     open it, unless it is given [Opts.Sessions]: then it takes the
//     console's session cookie instead (see [Sessions]), and sends a
//     browser without one to the console's login page. Tokens are compared
//     in constant time.
//   - Without a token the routes are served only when the server listens on
//     a loopback address ([CheckListenAddr] refuses to start otherwise) and
//     only to loopback clients.
//   - A refused request gets 401 (403 for a non-loopback client without a
//     token) and a JSON body {"error": "..."}; the handler behind is not
//     called, so nothing changes.
package adminauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

// EnvToken is the environment variable holding the admin token.
const EnvToken = "REBOUND_ADMIN_TOKEN"

// ErrNoToken is returned (wrapped, naming the address) by [CheckListenAddr]
// when admin routes would be served on a non-loopback address without a
// token.
var ErrNoToken = errors.New("admin routes need " + EnvToken)

// IsLoopback reports whether a listen address (host:port, as given to
// net.Listen) or a host binds only the loopback interface: "localhost",
// 127.0.0.0/8 or ::1. An empty host (":8080") listens everywhere: false.
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckListenAddr returns nil when admin routes may be served on addr: a
// token is set, or addr is a loopback address. Otherwise an error wrapping
// [ErrNoToken] that says why and what to do; the worker refuses to start
// with it.
func CheckListenAddr(addr, token string) error {
	if token != "" {
		return ValidateToken(token)
	}
	if IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("%w: the HTTP server listens on %q, which is not a loopback address, and admin routes (/api/admin/..., /console/, /riverui/) would be open to anyone who can reach it; set %s to a secret, or listen on 127.0.0.1", ErrNoToken, addr, EnvToken)
}

// MinTokenLength is the shortest admin token accepted, in bytes.
const MinTokenLength = 16

// ValidateToken refuses an admin token that is too short to be a secret
// (under [MinTokenLength] bytes), that has leading or trailing white space
// (a copy-paste accident a Bearer header could never match) or that holds a
// control character (which no client can send).
func ValidateToken(token string) error { return ValidateTokenNamed(EnvToken, token) }

// ValidateTokenNamed is [ValidateToken] for a token that reaches rebound
// under another name (a Go field, say), which its messages use.
func ValidateTokenNamed(name, token string) error {
	if strings.TrimSpace(token) != token {
		return fmt.Errorf("%s has leading or trailing white space", name)
	}
	if strings.IndexFunc(token, unicode.IsControl) >= 0 {
		return fmt.Errorf("%s contains a control character, which no HTTP client can send", name)
	}
	if len(token) < MinTokenLength {
		return fmt.Errorf("%s is too short (%d characters): use at least %d random characters, e.g. `openssl rand -hex 32`", name, len(token), MinTokenLength)
	}
	return nil
}

// Opts configures [Require]. The zero value is usable.
type Opts struct {
	// AllowBasic also accepts HTTP basic auth with the token as the
	// password, and asks browsers for it (WWW-Authenticate: Basic) on a
	// 401. For the River UI.
	AllowBasic bool
	// Sessions, when set, also accepts a valid console session cookie
	// (see [Sessions]); a request that changes something (not GET, HEAD or
	// OPTIONS) without a Bearer token must then come from the same origin
	// ([SameOrigin]), else 403.
	Sessions *Sessions
	// LoginPath, when set, sends a browser (a GET or HEAD asking for HTML)
	// without credentials there with 303 See Other and ?next=<its path>,
	// instead of a 401.
	LoginPath string
}

// Require returns next guarded by token (see the package doc). opts may be
// nil.
func Require(token string, next http.Handler, opts *Opts) http.Handler {
	if opts == nil {
		opts = &Opts{}
	}
	basic := opts.AllowBasic
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, ok := credential(r, basic)
		if opts.Sessions != nil && !ok && !safeMethod(r.Method) && !SameOrigin(r) {
			deny(w, http.StatusForbidden, "cross-site request refused (Origin / Sec-Fetch-Site is not this site)")
			return
		}
		if token == "" {
			if !IsLoopback(r.RemoteAddr) {
				deny(w, http.StatusForbidden, "admin routes without "+EnvToken+" are served to loopback clients only")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if !ok && opts.Sessions != nil {
			if _, valid := opts.Sessions.FromRequest(r); valid {
				next.ServeHTTP(w, r)
				return
			}
			if opts.LoginPath != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html") {
				http.Redirect(w, r, opts.LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
		}
		if !ok {
			if basic {
				w.Header().Set("WWW-Authenticate", `Basic realm="rebound admin", charset="UTF-8"`)
			}
			deny(w, http.StatusUnauthorized, "missing admin token: send Authorization: Bearer <"+EnvToken+">")
			return
		}
		got := sha256.Sum256([]byte(presented))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			if basic {
				w.Header().Set("WWW-Authenticate", `Basic realm="rebound admin", charset="UTF-8"`)
			}
			deny(w, http.StatusUnauthorized, "wrong admin token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func credential(r *http.Request, basic bool) (string, bool) {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest), true
	}
	if basic {
		if _, pass, ok := r.BasicAuth(); ok {
			return pass, true
		}
	}
	return "", false
}

func deny(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
