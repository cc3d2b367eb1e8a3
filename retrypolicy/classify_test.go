package retrypolicy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestClassifyHTTPStatus(t *testing.T) {
	t.Parallel()

	cases := []struct {
		code      int
		class     retrypolicy.Class
		retryable bool
	}{
		{429, retrypolicy.ClassRateLimited, true},
		{500, retrypolicy.ClassServerError, true},
		{501, retrypolicy.ClassServerError, true},
		{502, retrypolicy.ClassServerError, true},
		{503, retrypolicy.ClassServerError, true},
		{504, retrypolicy.ClassServerError, true},
		{505, retrypolicy.ClassServerError, true},
		{520, retrypolicy.ClassServerError, true},
		{599, retrypolicy.ClassServerError, true},
		{511, retrypolicy.ClassUnauthorized, false},
		{408, retrypolicy.ClassTimeout, true},
		{400, retrypolicy.ClassBadRequest, false},
		{422, retrypolicy.ClassBadRequest, false},
		{405, retrypolicy.ClassBadRequest, false},
		{413, retrypolicy.ClassBadRequest, false},
		{499, retrypolicy.ClassBadRequest, false},
		{401, retrypolicy.ClassUnauthorized, false},
		{403, retrypolicy.ClassUnauthorized, false},
		{407, retrypolicy.ClassUnauthorized, false},
		{404, retrypolicy.ClassNotFound, false},
		{410, retrypolicy.ClassNotFound, false},
		{409, retrypolicy.ClassUnknown, true},
		{423, retrypolicy.ClassUnknown, true},
		{425, retrypolicy.ClassUnknown, true},
		// Not failures by status: nothing else in the chain, so unknown.
		{200, retrypolicy.ClassUnknown, true},
		{302, retrypolicy.ClassUnknown, true},
		{0, retrypolicy.ClassUnknown, true},
		{600, retrypolicy.ClassUnknown, true},
	}
	policy := retrypolicy.Policy{}.WithDefaults()
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			t.Parallel()
			err := &statusError{code: tc.code}
			require.Equal(t, tc.class, retrypolicy.Classify(err))
			require.Equal(t, tc.retryable, policy.Rule(retrypolicy.Classify(err)).Retry)
		})
	}
}

func TestClassifyWrapping(t *testing.T) {
	t.Parallel()

	unauthorized := &statusError{code: 401}
	cases := []struct {
		name  string
		err   error
		class retrypolicy.Class
	}{
		{"nil", nil, ""},
		{"401 wrapped twice", fmt.Errorf("call: %w", fmt.Errorf("post: %w", unauthorized)), retrypolicy.ClassUnauthorized},
		{"errors.Join second", errors.Join(errors.New("cleanup failed"), &statusError{code: 503}), retrypolicy.ClassServerError},
		{"errors.Join outermost first", errors.Join(&statusError{code: 404}, &statusError{code: 503}), retrypolicy.ClassNotFound},
		{"multi %w", fmt.Errorf("a: %w, b: %w", errors.New("x"), context.DeadlineExceeded), retrypolicy.ClassTimeout},
		{"river.JobCancel", river.JobCancel(fmt.Errorf("x: %w", &statusError{code: 429})), retrypolicy.ClassRateLimited},
		{"plain", errors.New("something odd"), retrypolicy.ClassUnknown},
		{"context.Canceled", fmt.Errorf("x: %w", context.Canceled), retrypolicy.ClassCancelled},
		{"context.DeadlineExceeded", fmt.Errorf("x: %w", context.DeadlineExceeded), retrypolicy.ClassTimeout},
		{"os.ErrDeadlineExceeded", fmt.Errorf("x: %w", os.ErrDeadlineExceeded), retrypolicy.ClassTimeout},
		{"ECONNREFUSED", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, retrypolicy.ClassNetwork},
		{"ECONNRESET", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, retrypolicy.ClassNetwork},
		{"EPIPE", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, retrypolicy.ClassNetwork},
		{"EHOSTUNREACH", os.NewSyscallError("connect", syscall.EHOSTUNREACH), retrypolicy.ClassNetwork},
		{"ETIMEDOUT", os.NewSyscallError("connect", syscall.ETIMEDOUT), retrypolicy.ClassTimeout},
		{"ENOMEM", fmt.Errorf("mmap: %w", syscall.ENOMEM), retrypolicy.ClassOutOfMemory},
		{"ENOMEM under a net.OpError", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ENOMEM)}, retrypolicy.ClassOutOfMemory},
		{"other errno", syscall.EINVAL, retrypolicy.ClassUnknown},
		{"net.OpError with unknown cause", &net.OpError{Op: "read", Err: errors.New("tls: bad record MAC")}, retrypolicy.ClassNetwork},
		{"DNS not found", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, retrypolicy.ClassNotFound},
		{"DNS temporary", &net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true}, retrypolicy.ClassNetwork},
		{"DNS timeout", &net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}, retrypolicy.ClassTimeout},
		{"unexpected EOF", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), retrypolicy.ClassNetwork},
		{"plain EOF", io.EOF, retrypolicy.ClassUnknown},
		{"json syntax", fmt.Errorf("decode: %w", &json.SyntaxError{Offset: 3}), retrypolicy.ClassDecode},
		{"json type", &json.UnmarshalTypeError{Value: "string"}, retrypolicy.ClassDecode},
		{"breaker open by behaviour", fmt.Errorf("gate: %w", &breakerOpenError{key: "api"}), retrypolicy.ClassBreakerOpen},
		{"url.Error of a cancelled request", &netURLError{err: context.Canceled}, retrypolicy.ClassCancelled},
		{"river unknown kind", &river.UnknownJobKindError{Kind: "nope"}, retrypolicy.ClassUnknown},
		{"expired certificate", fmt.Errorf("x: %w", x509.CertificateInvalidError{Reason: x509.Expired}), retrypolicy.ClassMisconfigured},
		{"certificate for another host", x509.HostnameError{Host: "api.example.com"}, retrypolicy.ClassMisconfigured},
		{"unknown authority", &x509.UnknownAuthorityError{}, retrypolicy.ClassMisconfigured},
		{"no system roots", x509.SystemRootsError{}, retrypolicy.ClassMisconfigured},
		{"TLS verification under a net.OpError", &net.OpError{Op: "read", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, retrypolicy.ClassMisconfigured},
		{"peer does not speak TLS", &net.OpError{Op: "remote error", Err: tls.RecordHeaderError{Msg: "tls: first record does not look like a TLS handshake"}}, retrypolicy.ClassMisconfigured},
		{"TLS handshake reset stays network", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, retrypolicy.ClassNetwork},
		{"marker beats a certificate error", retrypolicy.Retryable(x509.UnknownAuthorityError{}, retrypolicy.ClassNetwork), retrypolicy.ClassNetwork},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.class, retrypolicy.Classify(tc.err))
		})
	}
}

// netURLError is shaped like *url.Error: a net.Error whose Timeout() asks the
// wrapped error.
type netURLError struct{ err error }

func (e *netURLError) Error() string { return "Get \"http://x\": " + e.err.Error() }
func (e *netURLError) Unwrap() error { return e.err }
func (e *netURLError) Timeout() bool {
	t, ok := e.err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}
func (e *netURLError) Temporary() bool { return false }

func TestClassifyRealErrors(t *testing.T) {
	t.Parallel()

	t.Run("refused TCP connection is network", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())

		_, err = net.Dial("tcp", addr)
		require.Error(t, err)
		require.True(t, errors.Is(err, syscall.ECONNREFUSED), "dial error: %v", err)
		require.Equal(t, retrypolicy.ClassNetwork, retrypolicy.Classify(err))

		_, err = http.Get("http://" + addr + "/")
		require.Error(t, err)
		require.Equal(t, retrypolicy.ClassNetwork, retrypolicy.Classify(err))
		require.True(t, retrypolicy.Classify(err).DownstreamUnhealthy())
	})

	t.Run("http.Client timeout against a slow server is timeout", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		defer srv.Close()

		client := &http.Client{Timeout: 50 * time.Millisecond}
		_, err := client.Get(srv.URL)
		require.Error(t, err)
		require.Equal(t, retrypolicy.ClassTimeout, retrypolicy.Classify(err))
	})

	t.Run("context deadline on a request is timeout", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()

		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		_, err = http.DefaultClient.Do(req)
		require.Error(t, err)
		require.Equal(t, retrypolicy.ClassTimeout, retrypolicy.Classify(err))
	})

	t.Run("a cancelled request is cancelled", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()

		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		_, err = http.DefaultClient.Do(req)
		require.Error(t, err)
		require.Equal(t, retrypolicy.ClassCancelled, retrypolicy.Classify(err))
	})

	// A certificate that does not verify, and TLS asked of a peer that does
	// not speak it: misconfigured, not retried, not counted by the breaker.
	t.Run("TLS failures are misconfigured", func(t *testing.T) {
		t.Parallel()
		tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		defer tlsSrv.Close()
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		defer plain.Close()

		for _, url := range []string{tlsSrv.URL, "https://" + plain.Listener.Addr().String()} {
			_, err := http.Get(url)
			require.Error(t, err)
			c := retrypolicy.Classify(err)
			require.Equal(t, retrypolicy.ClassMisconfigured, c, "%v", err)
			require.False(t, c.DownstreamUnhealthy())
			require.False(t, retrypolicy.DefaultRule(c).Retry)
		}
	})

	t.Run("malformed JSON is decode", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id": 12, "name": `))
		}))
		defer srv.Close()

		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var v struct{ ID int }
		err = json.Unmarshal(body, &v)
		require.Error(t, err)
		require.Equal(t, retrypolicy.ClassDecode, retrypolicy.Classify(fmt.Errorf("decode response: %w", err)))

		err = json.Unmarshal([]byte(`{"ID": "twelve"}`), &v)
		require.Error(t, err)
		require.Equal(t, retrypolicy.ClassDecode, retrypolicy.Classify(err))
	})

	t.Run("a body cut short is network", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			writeShortResponse(buf)
		}))
		defer srv.Close()

		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.Equal(t, retrypolicy.ClassNetwork, retrypolicy.Classify(err))
	})

	t.Run("429 with Retry-After: 120 waits at least 120s", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		defer srv.Close()

		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		err = fmt.Errorf("deliver: %w", responseError(resp, time.Now()))

		diag := retrypolicy.Diagnose(err)
		require.Equal(t, retrypolicy.ClassRateLimited, diag.Class)
		require.Equal(t, 120*time.Second, diag.RetryAfter)
		for _, jitter := range []retrypolicy.Jitter{retrypolicy.JitterNone, retrypolicy.JitterFull, retrypolicy.JitterEqual, retrypolicy.JitterProportional, retrypolicy.JitterDecorrelated} {
			p := retrypolicy.Policy{Jitter: jitter}.WithDefaults()
			for attempt := 1; attempt <= 6; attempt++ {
				for _, r := range []retrypolicy.Rand{lowRand, highRand} {
					d := p.Delay(retrypolicy.DelayParams{Attempt: attempt, Strategy: p.Rule(diag.Class).Strategy, RetryAfter: diag.RetryAfter}, r)
					require.GreaterOrEqual(t, d, 120*time.Second, "jitter %s attempt %d", jitter, attempt)
				}
			}
		}
		// Attempt 1 without jitter: aggressive gives 2s, raised to exactly 120s.
		p := retrypolicy.Policy{Jitter: retrypolicy.JitterNone}.WithDefaults()
		require.Equal(t, 120*time.Second, p.Delay(retrypolicy.DelayParams{Attempt: 1, Strategy: retrypolicy.StrategyAggressive, RetryAfter: diag.RetryAfter}, nil))
		// Attempt 6: aggressive is capped at 300s, above the Retry-After.
		require.Equal(t, 300*time.Second, p.Delay(retrypolicy.DelayParams{Attempt: 6, Strategy: retrypolicy.StrategyAggressive, RetryAfter: diag.RetryAfter}, nil))
	})

	t.Run("503 with an HTTP-date 60s ahead waits exactly 60s", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", testNow.Add(60*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()

		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		diag := retrypolicy.Diagnose(responseError(resp, testNow))
		require.Equal(t, retrypolicy.ClassServerError, diag.Class)
		require.Equal(t, 60*time.Second, diag.RetryAfter)
		for _, jitter := range []retrypolicy.Jitter{retrypolicy.JitterNone, retrypolicy.JitterFull, retrypolicy.JitterEqual, retrypolicy.JitterProportional, retrypolicy.JitterDecorrelated} {
			p := retrypolicy.Policy{Jitter: jitter}.WithDefaults()
			for _, r := range []retrypolicy.Rand{lowRand, highRand} {
				d := p.Delay(retrypolicy.DelayParams{Attempt: 1, Strategy: retrypolicy.StrategyExponential, RetryAfter: diag.RetryAfter}, r)
				require.Equal(t, 60*time.Second, d, "jitter %s", jitter)
			}
		}
	})
}

// writeShortResponse promises 100 bytes of body and sends 3.
func writeShortResponse(buf *bufio.ReadWriter) {
	_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nabc")
	_ = buf.Flush()
}

func TestClassDownstreamUnhealthy(t *testing.T) {
	t.Parallel()

	unhealthy := map[retrypolicy.Class]bool{
		retrypolicy.ClassServerError: true,
		retrypolicy.ClassTimeout:     true,
		retrypolicy.ClassNetwork:     true,
	}
	require.Len(t, retrypolicy.Classes(), 16)
	for _, c := range retrypolicy.Classes() {
		require.True(t, c.Valid(), c)
		require.Equal(t, unhealthy[c], c.DownstreamUnhealthy(), c)
	}
	require.False(t, retrypolicy.Class("teapot").Valid())
	require.False(t, retrypolicy.Class("").Valid())
}

func TestStatusClass(t *testing.T) {
	t.Parallel()

	// Every status from 0 to 999 maps to a valid class or to "" (no
	// failure), and "" exactly outside 400-599.
	for code := 0; code < 1000; code++ {
		c := retrypolicy.StatusClass(code)
		if code >= 400 && code <= 599 {
			require.True(t, c.Valid(), "status %d gave %q", code, c)
		} else {
			require.Equal(t, retrypolicy.Class(""), c, "status %d", code)
		}
	}
}
