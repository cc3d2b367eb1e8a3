package retrypolicy_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// upstreamError is how a job reports an HTTP failure: by behaviour.
type upstreamError struct {
	status     int
	retryAfter time.Duration
}

func (e *upstreamError) Error() string             { return fmt.Sprintf("upstream answered %d", e.status) }
func (e *upstreamError) StatusCode() int           { return e.status }
func (e *upstreamError) RetryAfter() time.Duration { return e.retryAfter }

func ExampleClassify() {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, err := range []error{
		&upstreamError{status: 429},
		fmt.Errorf("deliver: %w", fmt.Errorf("post: %w", &upstreamError{status: 401})),
		&upstreamError{status: 503},
		fmt.Errorf("deliver: %w", refused),
		context.DeadlineExceeded,
		fmt.Errorf("deliver: %w", x509.UnknownAuthorityError{}), // a self-signed certificate
		errors.New("something else"),
	} {
		class := retrypolicy.Classify(err)
		fmt.Printf("%-15s retried=%-5v breaker counts=%v\n", class, retrypolicy.DefaultRule(class).Retry, class.DownstreamUnhealthy())
	}
	// Output:
	// rate_limited    retried=true  breaker counts=false
	// unauthorized    retried=false breaker counts=false
	// server_error    retried=true  breaker counts=true
	// network         retried=true  breaker counts=true
	// timeout         retried=true  breaker counts=true
	// misconfigured   retried=false breaker counts=false
	// unknown         retried=true  breaker counts=false
}

func ExamplePermanent() {
	// A job decides a timeout is not worth retrying; errors.Is still sees it.
	err := fmt.Errorf("export: %w", retrypolicy.Permanent(context.DeadlineExceeded))
	d := retrypolicy.Diagnose(err)
	fmt.Println(d.Class, d.Override, errors.Is(err, context.DeadlineExceeded))

	// Retry a 404 as if it were a network failure, and not before 30s.
	err = retrypolicy.WithRetryAfter(retrypolicy.Retryable(&upstreamError{status: 404}, retrypolicy.ClassNetwork), 30*time.Second)
	d = retrypolicy.Diagnose(err)
	fmt.Println(d.Class, d.Override, d.RetryAfter)
	// Output:
	// timeout permanent true
	// network retry 30s
}
