package jobs_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Every transport failure an http_request job can meet, each against a real
// server, with the class it gets (the table in docs/failure-classes.md). The
// client is NewHTTPClient's, trusting a test certificate authority, so each
// TLS failure is the one defect its server has.
func TestHTTPRequestTransportErrorClasses(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	now := time.Now()
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	hello := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }

	valid := tlsServer(t, pki.leaf(t, now.Add(-time.Hour), now.Add(time.Hour), nil, loopback), nil, hello)
	selfSigned := httptest.NewTLSServer(http.HandlerFunc(hello))
	t.Cleanup(selfSigned.Close)
	selfSigned.Config.ErrorLog = quietLog
	otherHost := tlsServer(t, pki.leaf(t, now.Add(-time.Hour), now.Add(time.Hour), []string{"other.example"}, nil), nil, hello)
	expired := tlsServer(t, pki.leaf(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), nil, loopback), nil, hello)
	clientCertRequired := tlsServer(t, pki.leaf(t, now.Add(-time.Hour), now.Add(time.Hour), nil, loopback),
		func(c *tls.Config) { c.ClientAuth = tls.RequireAnyClientCert }, hello)
	tls13Only := tlsServer(t, pki.leaf(t, now.Add(-time.Hour), now.Add(time.Hour), nil, loopback),
		func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, hello)
	plain := httptest.NewServer(http.HandlerFunc(hello))
	t.Cleanup(plain.Close)

	loops := map[string]*atomic.Int64{"/loop/0": new(atomic.Int64), "/loop/1": new(atomic.Int64)} // requests seen
	redirects := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, ok := loops[r.URL.Path]; ok {
			n.Add(1)
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
			return
		}
		switch r.URL.Path {
		case "/ftp":
			http.Redirect(w, r, "ftp://files.example/x?token=secret", http.StatusFound)
		case "/nowhere":
			w.WriteHeader(http.StatusFound) // no Location: not followed
		}
	}))
	t.Cleanup(redirects.Close)

	garbage := rawServer(t, func(c net.Conn) { readRequest(c); _, _ = io.WriteString(c, "HELLO\r\n") })
	sshBanner := rawServer(t, func(c net.Conn) { _, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6 Ubuntu-3\r\n"); readRequest(c) })
	bannerAfterRequest := rawServer(t, func(c net.Conn) { readRequest(c); _, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6 Ubuntu-3\r\n") })
	badHeaderLine := rawServer(t, func(c net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nthis line has no colon\r\n\r\n")
	})
	hugeHeaders := rawServer(t, func(c net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 1<<20)+"\r\n\r\n")
	})
	hangup := rawServer(t, func(c net.Conn) { readRequest(c) })
	reset := rawServer(t, func(c net.Conn) { readRequest(c); _ = c.(*net.TCPConn).SetLinger(0) })
	tlsReset := rawServer(t, func(c net.Conn) { _, _ = c.Read(make([]byte, 512)); _ = c.(*net.TCPConn).SetLinger(0) })
	tlsSilent := rawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	short2xx := rawServer(t, func(c net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
	})
	short503 := rawServer(t, func(c net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nbusy")
	})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(slow.Close)

	closed := closedAddr(t)
	nxdomain := dnsServer(t, 3) // NXDOMAIN: the name does not exist
	servfail := dnsServer(t, 2) // SERVFAIL: the resolver failed
	proxy := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodConnect {
				w.WriteHeader(status)
			}
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	viaProxy := func(proxyURL string) func(*http.Transport) {
		u, err := url.Parse(proxyURL)
		require.NoError(t, err)
		return func(tr *http.Transport) { tr.Proxy = http.ProxyURL(u) }
	}
	waitAfterConnect := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { time.Sleep(100 * time.Millisecond) }}
	resolveWith := func(dnsAddr string) func(*http.Transport) {
		return func(tr *http.Transport) {
			d := &net.Dialer{Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "udp", dnsAddr)
			}}}
			tr.DialContext = d.DialContext
		}
	}

	tests := []struct {
		name       string
		url        string
		transport  func(*http.Transport) // adjusts the client's transport
		bareClient bool                  // an http.Client without CheckRedirect
		ctxFor     time.Duration         // the job's deadline; 0: none
		wantErr    string                // "" means success
		trace      *httptrace.ClientTrace
		wantCalls  *atomic.Int64 // requests the server saw, if counted
		calls      int64
		wantClass  retrypolicy.Class
		wantAs     func(error) bool // the typed error in the chain, if any
	}{
		// Control: the client trusts the test authority.
		{name: "certificate from the trusted authority", url: valid.URL},

		// Certificates and TLS settings: misconfigured.
		{name: "self-signed certificate", url: selfSigned.URL, wantErr: "x509: certificate signed by unknown authority",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[x509.UnknownAuthorityError]},
		{name: "certificate for another host name", url: strings.Replace(otherHost.URL, "127.0.0.1", "localhost", 1), wantErr: "x509: certificate is valid for other.example, not localhost",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[x509.HostnameError]},
		{name: "expired certificate", url: expired.URL, wantErr: "x509: certificate has expired or is not yet valid",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: func(err error) bool {
				e, ok := errors.AsType[x509.CertificateInvalidError](err)
				return ok && e.Reason == x509.Expired
			}},
		{name: "server requires a client certificate", url: clientCertRequired.URL, wantErr: "remote error: tls: certificate required",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.TransportError]},
		{name: "server refuses the client's TLS version", url: tls13Only.URL,
			transport: func(tr *http.Transport) { tr.TLSClientConfig.MaxVersion = tls.VersionTLS12 },
			wantErr:   "remote error: tls: protocol version not supported",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.TransportError]},
		{name: "https to a plain HTTP port", url: "https://" + plain.Listener.Addr().String(), wantErr: "http: server gave HTTP response to HTTPS client",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: func(err error) bool { return errors.Is(err, http.ErrSchemeMismatch) }},
		{name: "https to a port that speaks neither", url: "https://" + sshBanner, wantErr: "tls: first record does not look like a TLS handshake",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[tls.RecordHeaderError]},

		// What the server answers is not HTTP the client accepts: misconfigured.
		{name: "garbage instead of HTTP", url: "http://" + garbage, wantErr: `malformed HTTP response "HELLO"`,
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.TransportError]},
		{name: "another protocol's answer", url: "http://" + bannerAfterRequest, wantErr: `malformed HTTP status code "Ubuntu-3"`,
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.TransportError]},
		// Whether net/http reads a banner before it sends the request
		// (unsolicited data) or after (a malformed answer, as above) is a
		// race; here the request waits for the banner.
		{name: "a server that speaks first", url: "http://" + sshBanner, trace: waitAfterConnect,
			wantErr:   "the server sent data before the request (a protocol other than HTTP?): readLoopPeekFailLocked",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.TransportError]},
		{name: "malformed header line", url: "http://" + badHeaderLine, wantErr: `malformed MIME header: missing colon: "this line has no colon"`,
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[textproto.ProtocolError]},
		{name: "response headers over the limit", url: "http://" + hugeHeaders,
			// The limit is lowered (default 10 MiB) to keep the test fast.
			transport: func(tr *http.Transport) { tr.MaxResponseHeaderBytes = 64 << 10 },
			wantErr:   "net/http: server response headers exceeded 65536 bytes; aborted",
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.TransportError]},

		// Redirects: misconfigured.
		{name: "redirect loop", url: redirects.URL + "/loop/0", wantErr: "stopped after 10 redirects (a redirect loop?), the last to " + redirects.URL + "/loop/0",
			// Followed as far as net/http's own limit: the request and 9
			// redirects, the 10th refused.
			wantCalls: loops["/loop/0"], calls: jobs.MaxHTTPRedirects,
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.RedirectError]},
		{name: "redirect loop with a client of its own", url: redirects.URL + "/loop/1", bareClient: true,
			wantErr:   "stopped after 10 redirects (a redirect loop?), the last to " + redirects.URL + "/loop/1",
			wantCalls: loops["/loop/1"], calls: jobs.MaxHTTPRedirects,
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.RedirectError]},
		{name: "redirect to an unsupported scheme", url: redirects.URL + "/ftp", wantErr: `redirected to ftp://files.example/x, whose scheme "ftp" is not http or https`,
			wantClass: retrypolicy.ClassMisconfigured, wantAs: isType[*jobs.RedirectError]},

		{name: "redirect without a Location", url: redirects.URL + "/nowhere", wantErr: "HTTP 302 Found",
			wantClass: retrypolicy.ClassUnknown, wantAs: isType[*jobs.HTTPStatusError]},

		// The connection or the name service failed: network, timeout.
		{name: "connection refused", url: "http://" + closed, wantErr: "connect: connection refused",
			wantClass: retrypolicy.ClassNetwork, wantAs: func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{name: "connection reset before an answer", url: "http://" + reset, wantErr: "connection reset by peer",
			wantClass: retrypolicy.ClassNetwork, wantAs: func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{name: "connection closed without an answer", url: "http://" + hangup, wantErr: ": EOF",
			wantClass: retrypolicy.ClassNetwork, wantAs: func(err error) bool { return errors.Is(err, io.EOF) }},
		{name: "TLS handshake reset", url: "https://" + tlsReset, wantErr: "connection reset by peer",
			wantClass: retrypolicy.ClassNetwork, wantAs: func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{name: "TLS handshake timeout", url: "https://" + tlsSilent,
			transport: func(tr *http.Transport) { tr.TLSHandshakeTimeout = 200 * time.Millisecond },
			wantErr:   "net/http: TLS handshake timeout", wantClass: retrypolicy.ClassTimeout},
		{name: "the job's deadline", url: slow.URL, ctxFor: 200 * time.Millisecond, wantErr: "context deadline exceeded",
			wantClass: retrypolicy.ClassTimeout, wantAs: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{name: "host name that does not exist", url: "http://nohost.rebound.test/x", transport: resolveWith(nxdomain),
			wantErr: "lookup nohost.rebound.test", wantClass: retrypolicy.ClassNotFound, wantAs: func(err error) bool {
				e, ok := errors.AsType[*net.DNSError](err)
				return ok && e.IsNotFound
			}},
		{name: "name server failure", url: "http://nohost.rebound.test/x", transport: resolveWith(servfail),
			wantErr: "server misbehaving", wantClass: retrypolicy.ClassNetwork, wantAs: func(err error) bool {
				e, ok := errors.AsType[*net.DNSError](err)
				return ok && e.IsTemporary
			}},

		// Proxies: unreachable is network; a refused CONNECT is classified by
		// its status.
		{name: "proxy unreachable", url: "https://api.rebound.test/x", transport: viaProxy("http://" + closed),
			wantErr: "proxyconnect tcp: dial tcp " + closed + ": connect: connection refused", wantClass: retrypolicy.ClassNetwork},
		{name: "proxy wants credentials", url: "https://api.rebound.test/x", transport: viaProxy(proxy(http.StatusProxyAuthRequired)),
			wantErr: "refused CONNECT to api.rebound.test:443: HTTP 407 Proxy Authentication Required", wantClass: retrypolicy.ClassUnauthorized, wantAs: isType[*jobs.ProxyConnectError]},
		{name: "proxy forbids the destination", url: "https://api.rebound.test/x", transport: viaProxy(proxy(http.StatusForbidden)),
			wantErr: "refused CONNECT to api.rebound.test:443: HTTP 403 Forbidden", wantClass: retrypolicy.ClassUnauthorized, wantAs: isType[*jobs.ProxyConnectError]},
		{name: "proxy cannot reach the destination", url: "https://api.rebound.test/x", transport: viaProxy(proxy(http.StatusBadGateway)),
			wantErr: "refused CONNECT to api.rebound.test:443: HTTP 502 Bad Gateway", wantClass: retrypolicy.ClassServerError, wantAs: isType[*jobs.ProxyConnectError]},

		// After the status: the status decides, a body read error is ignored.
		{name: "body cut short after a 2xx", url: "http://" + short2xx},
		{name: "body cut short after a 503", url: "http://" + short503, wantErr: "HTTP 503 Service Unavailable: busy",
			wantClass: retrypolicy.ClassServerError, wantAs: isType[*jobs.HTTPStatusError]},
		{name: "http to an HTTPS port", url: strings.Replace(valid.URL, "https:", "http:", 1), wantErr: "HTTP 400 Bad Request: Client sent an HTTP request to an HTTPS server.",
			wantClass: retrypolicy.ClassBadRequest, wantAs: isType[*jobs.HTTPStatusError]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := jobs.NewHTTPClient()
			tr := client.Transport.(*http.Transport)
			tr.Proxy = nil // whatever the environment says
			tr.TLSClientConfig = &tls.Config{RootCAs: pki.pool}
			if tt.transport != nil {
				tt.transport(tr)
			}
			if tt.bareClient {
				client = &http.Client{Transport: tr}
			}
			ctx := t.Context()
			if tt.trace != nil {
				ctx = httptrace.WithClientTrace(ctx, tt.trace)
			}
			if tt.ctxFor > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxFor)
				defer cancel()
			}
			w := &jobs.HTTPRequestWorker{Client: client}
			err := w.Work(ctx, job(jobs.HTTPRequestArgs{URL: tt.url, Method: "GET"}))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), "secret")
			d := retrypolicy.Diagnose(err)
			require.Equal(t, tt.wantClass, d.Class, "%v", err)
			require.Equal(t, retrypolicy.OverrideNone, d.Override, "the policy decides, not a marker")
			if tt.wantAs != nil {
				require.True(t, tt.wantAs(err), "%T in the chain of %v", err, err)
			}
			if tt.wantCalls != nil {
				require.Equal(t, tt.calls, tt.wantCalls.Load())
			}
		})
	}
}

// A job whose url, method or headers do not validate (inserted past
// enqueue's checks) ends at once as bad_request, without a request; an
// operation key longer than enqueue allows is no reason to refuse it.
func TestHTTPRequestInvalidArgsAreBadRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    jobs.HTTPRequestArgs
		wantErr string
	}{
		{"unsupported scheme", jobs.HTTPRequestArgs{URL: "ftp://files.example/x?token=secret"}, `invalid args: url must be absolute http or https, got "ftp://files.example/x"`},
		{"unparsable URL", jobs.HTTPRequestArgs{URL: "http://[::1"}, "invalid args: url: missing ']' in host"},
		{"no host", jobs.HTTPRequestArgs{URL: "http:///x"}, "invalid args: url has no host"},
		{"bad method", jobs.HTTPRequestArgs{URL: "http://127.0.0.1:1/x", Method: "BREW"}, `invalid args: method "BREW" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`},
		{"header with a line break", jobs.HTTPRequestArgs{URL: "http://127.0.0.1:1/x", Headers: map[string]string{"X-A": "a\r\nInjected: 1"}},
			`invalid args: headers: the value of "X-A" contains a line break or NUL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.args.ExplicitOperationKey = strings.Repeat("k", 300)
			err := (&jobs.HTTPRequestWorker{}).Work(t.Context(), job(tt.args))
			require.EqualError(t, err, tt.wantErr)
			require.ErrorIs(t, err, jobs.ErrInvalidArgs)
			d := retrypolicy.Diagnose(err)
			require.Equal(t, retrypolicy.ClassBadRequest, d.Class)
			require.Equal(t, retrypolicy.OverridePermanent, d.Override)
		})
	}
	// The long key alone: the request is sent.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	require.NoError(t, (&jobs.HTTPRequestWorker{}).Work(t.Context(), job(jobs.HTTPRequestArgs{URL: srv.URL, ExplicitOperationKey: strings.Repeat("k", 300)})))
}

func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

var quietLog = log.New(io.Discard, "", 0)

// testPKI is a certificate authority the test client trusts.
type testPKI struct {
	pool *x509.CertPool
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rebound test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{pool: pool, ca: ca, key: key}
}

// leaf issues a server certificate valid from notBefore to notAfter for
// the given names and addresses.
func (p *testPKI) leaf(t *testing.T, notBefore, notAfter time.Time, names []string, ips []net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rebound test server"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServer starts an HTTPS server presenting cert, its TLS settings
// adjusted by configure (if not nil).
func tlsServer(t *testing.T, cert tls.Certificate, configure func(*tls.Config), h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = quietLog
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if configure != nil {
		configure(srv.TLS)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// rawServer accepts TCP connections and runs serve on each, then closes it;
// it returns the listener's host:port.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c)
			})
		}
	})
	return l.Addr().String()
}

// readRequest reads an HTTP request's head from c.
func readRequest(c net.Conn) {
	_, _ = http.ReadRequest(bufio.NewReader(c))
}

// closedAddr is a loopback host:port nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// dnsServer answers every DNS query over UDP with no record and the given
// response code (2 SERVFAIL, 3 NXDOMAIN); it returns its host:port.
func dnsServer(t *testing.T, rcode uint16) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if n < 12 {
				continue
			}
			// The question: labels up to the root, then type and class.
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			resp := make([]byte, end)
			copy(resp, q[:end])
			flags := binary.BigEndian.Uint16(q[2:4])
			binary.BigEndian.PutUint16(resp[2:4], 0x8000|flags&0x7900|0x0080|rcode) // QR, opcode, RD, RA, rcode
			binary.BigEndian.PutUint16(resp[4:6], 1)                                // one question
			binary.BigEndian.PutUint16(resp[6:8], 0)
			binary.BigEndian.PutUint16(resp[8:10], 0)
			binary.BigEndian.PutUint16(resp[10:12], 0)
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}
