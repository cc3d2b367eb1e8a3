package jobs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// MaxHTTPRedirects is how many redirects an http_request job receives
// before it fails with a [*RedirectError]: 10, net/http's own limit. The
// last one is not followed, so one attempt sends at most 10 requests.
const MaxHTTPRedirects = 10

// RedirectError is the failure of an http_request job whose request was
// redirected in a way the job does not follow: more than
// [MaxHTTPRedirects] times (a loop, typically a URL that redirects to
// itself), or to a URL that is not http or https. Its class is
// misconfigured (not retried by default, never counted by the circuit
// breaker): the downstream answers, and the same redirects will come back
// until someone fixes the job's URL or the server's redirect rules.
type RedirectError struct {
	// Redirects is the number of redirects received, the refused one
	// included.
	Redirects int
	// URL is the redirect target not followed, without user info, query or
	// fragment.
	URL string
	// Scheme is the target's scheme when it is not http or https (e.g.
	// "ftp"); "" when the limit was reached.
	Scheme string
}

func (e *RedirectError) Error() string {
	if e.Scheme != "" {
		return fmt.Sprintf("redirected to %s, whose scheme %q is not http or https", e.URL, e.Scheme)
	}
	return fmt.Sprintf("stopped after %d redirects (a redirect loop?), the last to %s", e.Redirects, e.URL)
}

// FailureClass is "misconfigured", the class the retry policy files the
// error under.
func (e *RedirectError) FailureClass() string { return string(retrypolicy.ClassMisconfigured) }

// CheckRedirect is the redirect policy of [NewHTTPClient] (an
// http.Client.CheckRedirect): it follows redirects to http and https URLs
// and refuses the [MaxHTTPRedirects]th, or one to another scheme, with a
// [*RedirectError]. An
// http_request worker whose client has no CheckRedirect uses it too.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return &RedirectError{Redirects: len(via), URL: redactURL(req.URL.String()), Scheme: s}
	}
	if len(via) >= MaxHTTPRedirects {
		return &RedirectError{Redirects: len(via), URL: redactURL(req.URL.String())}
	}
	return nil
}

// ProxyConnectError is the failure of an http_request job sent through an
// HTTP proxy that answered the CONNECT request (the tunnel to an https URL)
// with a status other than 200. The retry policy classifies it by its
// status like any HTTP failure: 403 and 407 are unauthorized (the proxy
// refuses this client or this destination: not retried, not counted by the
// breaker), 502-504 server_error (the proxy could not reach the downstream:
// retried, counted). [NewHTTPClient]'s transport returns it; a proxy that
// cannot be reached at all is class network.
type ProxyConnectError struct {
	// Proxy is the proxy's host:port.
	Proxy string
	// Target is the host:port the tunnel was asked for.
	Target string
	// Status is the proxy's status code, e.g. 407.
	Status int
}

func (e *ProxyConnectError) Error() string {
	return fmt.Sprintf("proxy %s refused CONNECT to %s: HTTP %d %s", e.Proxy, e.Target, e.Status, http.StatusText(e.Status))
}

// StatusCode is the proxy's status code.
func (e *ProxyConnectError) StatusCode() int { return e.Status }

// proxyConnectResponse is NewHTTPClient's Transport.OnProxyConnectResponse:
// it gives a refused CONNECT a type (net/http's own error is the status text
// alone).
func proxyConnectResponse(_ context.Context, proxy *url.URL, req *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &ProxyConnectError{Proxy: proxy.Host, Target: req.Host, Status: resp.StatusCode}
}

// TransportError is a failure of an http_request job's request, before any
// usable response, that net/http reports without a type the retry policy can
// read. Class says how rebound reads it; Error and Unwrap are Err's, so
// errors.Is and errors.As see through it. The cases, from net/http and
// crypto/tls as of Go 1.26 (the job's tests pin each against a real server):
//
//   - misconfigured — the peer does not speak the HTTP the client accepts:
//     "malformed HTTP response", "malformed HTTP status code", "malformed
//     HTTP version", a textproto.ProtocolError (the URL's port serves
//     another protocol), or data sent before the request, which net/http
//     reports as "readLoopPeekFailLocked" with no cause (a protocol whose
//     server speaks first, such as SSH or SMTP); response headers over the
//     transport's MaxResponseHeaderBytes ("server response headers
//     exceeded"; 10 MiB by default); "unsupported protocol scheme"; a TLS
//     alert from the server refusing the handshake over the client's TLS
//     settings (handshake_failure, bad_certificate, unsupported_certificate,
//     certificate_revoked, certificate_expired, certificate_unknown,
//     unknown_ca, access_denied, protocol_version, insufficient_security,
//     unrecognized_name, certificate_required, no_application_protocol).
//   - network — anything else the transport returns while the job's context
//     is alive that the retry policy does not recognise, such as a bare
//     io.EOF (a server or proxy closing the connection without an answer).
type TransportError struct {
	// Class is the failure's class: misconfigured or network.
	Class retrypolicy.Class
	// Err is net/http's error (without its *url.Error, whose message repeats
	// the URL with its query string).
	Err error
}

func (e *TransportError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *TransportError) Unwrap() error { return e.Err }

// FailureClass returns Class, the class the retry policy files the error
// under.
func (e *TransportError) FailureClass() string { return string(e.Class) }

// untypedMisconfigured are the starts of the messages of net/http errors
// that have no type and mean a misconfiguration (see TransportError). A
// change of wording in a future Go fails the job's transport error tests.
var untypedMisconfigured = [...]string{
	"malformed HTTP response ",
	"malformed HTTP status code ",
	"malformed HTTP version ",
	"net/http: server response headers exceeded ",
	"unsupported protocol scheme ",
}

// refusalAlerts are the messages of the TLS alerts a server sends when it
// refuses the handshake over the client's TLS settings. crypto/tls reports
// a received alert as a *net.OpError with Op "remote error" around a value
// of an unexported type; tls.AlertError renders the same codes the same way.
var refusalAlerts = func() map[string]bool {
	m := make(map[string]bool)
	for _, code := range []tls.AlertError{40, 42, 43, 44, 45, 46, 48, 49, 70, 71, 112, 116, 120} {
		m[code.Error()] = true
	}
	return m
}()

// misconfiguredTransport reports whether any layer of err is one of the
// untyped misconfigurations listed at TransportError.
func misconfiguredTransport(err error) bool {
	for err != nil {
		switch e := err.(type) {
		case *textproto.ProtocolError, textproto.ProtocolError:
			return true
		case *net.OpError:
			if e.Op == "remote error" && e.Err != nil && refusalAlerts[e.Err.Error()] {
				return true
			}
		}
		msg := err.Error()
		for _, prefix := range untypedMisconfigured {
			if strings.HasPrefix(msg, prefix) {
				return true
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if misconfiguredTransport(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// unsolicitedData reports whether err is net/http's report of data received
// on a connection before any request was sent on it: the error of
// persistConn.readLoopPeekFailLocked wrapping no cause.
func unsolicitedData(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if strings.HasPrefix(err.Error(), "readLoopPeekFailLocked: ") && errors.Unwrap(err) == nil {
			return true
		}
	}
	return false
}

// classifyTransport gives a type to the transport errors the retry policy
// cannot read (see TransportError) and returns the others as they are.
func classifyTransport(err error) error {
	switch {
	case unsolicitedData(err):
		return &TransportError{Class: retrypolicy.ClassMisconfigured,
			Err: fmt.Errorf("the server sent data before the request (a protocol other than HTTP?): %w", err)}
	case misconfiguredTransport(err):
		return &TransportError{Class: retrypolicy.ClassMisconfigured, Err: err}
	case retrypolicy.Classify(err) == retrypolicy.ClassUnknown:
		// With the context alive, anything else the transport returns is a
		// failure of the connection: a server (or a proxy whose backend
		// died) closing it without an answer comes back as a bare io.EOF,
		// which on its own says nothing.
		return &TransportError{Class: retrypolicy.ClassNetwork, Err: err}
	}
	return err
}

// invalidArgsError is the failure of a job whose args do not validate (a job
// inserted by another producer, past enqueue's checks): class bad_request.
type invalidArgsError struct{ err error }

func (e *invalidArgsError) Error() string        { return e.err.Error() }
func (e *invalidArgsError) Unwrap() error        { return e.err }
func (e *invalidArgsError) FailureClass() string { return string(retrypolicy.ClassBadRequest) }

// errInvalidArgs wraps err (from Validate) so the job ends now, as class
// bad_request, whatever the policy says about retrying that class: the same
// args fail the same way on every attempt.
func errInvalidArgs(err error) error {
	return retrypolicy.Permanent(&invalidArgsError{err: err})
}
