package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestParseSyntheticArgs(t *testing.T) {
	t.Parallel()
	reg := jobs.Builtin()
	tests := []struct {
		name    string
		raw     string
		want    jobs.SyntheticArgs
		wantErr string
	}{
		{name: "empty succeeds at once", raw: `{}`, want: jobs.SyntheticArgs{}},
		{name: "full", raw: `{"sleep_ms": 20, "fail_attempts": 2, "fail_class": "server_error", "fail_message": "bad\\x00byte \\xff\\xfe", "panic_on_attempt": 4, "operation_key": "payments"}`,
			want: jobs.SyntheticArgs{SleepMS: 20, FailAttempts: 2, FailClass: "server_error", FailMessage: `bad\x00byte \xff\xfe`, PanicOnAttempt: 4, ExplicitOperationKey: "payments"}},
		{name: "status", raw: `{"fail_attempts": 1, "fail_status": 503}`, want: jobs.SyntheticArgs{FailAttempts: 1, FailStatus: 503}},
		{name: "negative sleep", raw: `{"sleep_ms": -1}`, wantErr: "invalid args: sleep_ms must be between 0 and 3600000 (1 hour), got -1"},
		{name: "sleep over an hour", raw: `{"sleep_ms": 3600001}`, wantErr: "invalid args: sleep_ms must be between 0 and 3600000 (1 hour), got 3600001"},
		{name: "negative fail attempts", raw: `{"fail_attempts": -2}`, wantErr: "invalid args: fail_attempts must be between 0 and 32767, got -2"},
		{name: "absurd fail attempts", raw: `{"fail_attempts": 40000}`, wantErr: "invalid args: fail_attempts must be between 0 and 32767, got 40000"},
		{name: "negative panic attempt", raw: `{"panic_on_attempt": -1}`, wantErr: "invalid args: panic_on_attempt must be between 0 (never) and 32767, got -1"},
		{name: "class and status", raw: `{"fail_class": "timeout", "fail_status": 503}`, wantErr: "invalid args: give fail_class or fail_status, not both"},
		{name: "unknown class", raw: `{"fail_class": "boom"}`, wantErr: `invalid args: fail_class "boom" is not a failure class (known: rate_limited, server_error, timeout, network, decode, panic, lost, unknown_kind, unknown, bad_request, unauthorized, not_found, misconfigured, out_of_memory, breaker_open, cancelled)`},
		{name: "status out of range", raw: `{"fail_status": 99}`, wantErr: "invalid args: fail_status must be an HTTP status from 100 to 599, got 99"},
		{name: "bad escape", raw: `{"fail_message": "a\\qb"}`, wantErr: `invalid args: fail_message: a backslash at byte 1 must start \xHH or \\`},
		{name: "bad hex", raw: `{"fail_message": "a\\xZZ"}`, wantErr: `invalid args: fail_message: \x at byte 1 needs two hex digits, got "ZZ"`},
		{name: "message too long", raw: `{"fail_message": "` + strings.Repeat("m", 8193) + `"}`, wantErr: "invalid args: fail_message must be at most 8192 bytes, got 8193"},
		{name: "operation key with a newline", raw: `{"operation_key": "a\nb"}`, wantErr: `invalid args: operation_key: invalid operation key "a\nb": control character U+000A at byte 1`},
		{name: "unknown field", raw: `{"sleep": 5}`, wantErr: `invalid args: unknown field "sleep"`},
		{name: "sleep not a number", raw: `{"sleep_ms": "5"}`, wantErr: "invalid args: sleep_ms must be a number, not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args, err := reg.Parse(jobs.KindSynthetic, []byte(tt.raw))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, jobs.ErrInvalidArgs)
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, args)
		})
	}
}

func TestSyntheticOperationKey(t *testing.T) {
	t.Parallel()
	reg := jobs.Builtin()
	require.Equal(t, "payments", reg.OperationKey(jobs.KindSynthetic, []byte(`{"operation_key": "payments"}`), nil))
	require.Equal(t, "synthetic", reg.OperationKey(jobs.KindSynthetic, []byte(`{"sleep_ms": 1}`), nil))
	require.Equal(t, "synthetic", reg.OperationKey(jobs.KindSynthetic, []byte(`not json`), nil))
	require.Equal(t, "stamped", reg.OperationKey(jobs.KindSynthetic, []byte(`{"operation_key": "payments"}`), []byte(`{"operation_key": "stamped"}`)))
}

func TestDecodeByteEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, wantErr string }{
		{in: "plain text", want: "plain text"},
		{in: `bad\x00byte \xff\xFE here`, want: "bad\x00byte \xff\xfe here"},
		{in: `a\\x00`, want: `a\x00`},
		{in: `end\x4`, wantErr: `a backslash at byte 3 must start \xHH or \\`},
		{in: `\`, wantErr: `a backslash at byte 0 must start \xHH or \\`},
		{in: `\x0g`, wantErr: `\x at byte 0 needs two hex digits, got "0g"`},
	}
	for _, tt := range tests {
		got, err := jobs.DecodeByteEscapes(tt.in)
		if tt.wantErr != "" {
			require.EqualError(t, err, tt.wantErr, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

// FuzzDecodeByteEscapes: any bytes, escaped as \xHH, decode back to
// themselves; decoding arbitrary text never panics.
func FuzzDecodeByteEscapes(f *testing.F) {
	f.Add([]byte("bad\x00byte \xff\xfe"))
	f.Add([]byte(`\x`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = jobs.DecodeByteEscapes(string(raw))
		var b strings.Builder
		for _, c := range raw {
			b.WriteString(`\x`)
			b.WriteString(strings.ToUpper(string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])))
		}
		got, err := jobs.DecodeByteEscapes(b.String())
		require.NoError(t, err)
		require.Equal(t, string(raw), got)
	})
}

// The worker's decision per attempt, classified by the retry policy as the
// pod does.
func TestSyntheticWork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      jobs.SyntheticArgs
		attempt   int
		wantClass retrypolicy.Class // "" means success
		wantMsg   string
		wantPanic string
	}{
		{name: "success", args: jobs.SyntheticArgs{}, attempt: 1},
		{name: "within fail attempts", args: jobs.SyntheticArgs{FailAttempts: 2, FailClass: "timeout"}, attempt: 2, wantClass: retrypolicy.ClassTimeout, wantMsg: "synthetic failure on attempt 2"},
		{name: "past fail attempts", args: jobs.SyntheticArgs{FailAttempts: 2, FailClass: "timeout"}, attempt: 3},
		{name: "status 503", args: jobs.SyntheticArgs{FailAttempts: 1, FailStatus: 503}, attempt: 1, wantClass: retrypolicy.ClassServerError, wantMsg: "synthetic failure on attempt 1"},
		{name: "status 404", args: jobs.SyntheticArgs{FailAttempts: 1, FailStatus: 404}, attempt: 1, wantClass: retrypolicy.ClassNotFound, wantMsg: "synthetic failure on attempt 1"},
		{name: "no class given", args: jobs.SyntheticArgs{FailAttempts: 1}, attempt: 1, wantClass: retrypolicy.ClassUnknown, wantMsg: "synthetic failure on attempt 1"},
		{name: "hostile message", args: jobs.SyntheticArgs{FailAttempts: 1, FailClass: "bad_request", FailMessage: `bad\x00byte \xff`}, attempt: 1, wantClass: retrypolicy.ClassBadRequest, wantMsg: "bad\x00byte \xff"},
		{name: "panic", args: jobs.SyntheticArgs{PanicOnAttempt: 2}, attempt: 2, wantPanic: "synthetic panic on attempt 2"},
		{name: "panic with message", args: jobs.SyntheticArgs{PanicOnAttempt: 1, FailMessage: `p\x00`}, attempt: 1, wantPanic: "p\x00"},
		{name: "invalid args are bad_request", args: jobs.SyntheticArgs{SleepMS: -5}, attempt: 1, wantClass: retrypolicy.ClassBadRequest, wantMsg: "invalid args: sleep_ms must be between 0 and 3600000 (1 hour), got -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := &jobs.SyntheticWorker{}
			job := &river.Job[jobs.SyntheticArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: tt.attempt}, Args: tt.args}
			if tt.wantPanic != "" {
				require.PanicsWithValue(t, tt.wantPanic, func() { _ = w.Work(context.Background(), job) })
				return
			}
			err := w.Work(context.Background(), job)
			if tt.wantClass == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantMsg)
			require.Equal(t, tt.wantClass, retrypolicy.Classify(err))
		})
	}
}

// The sleep ends with the context, and the error is context.Canceled so a
// stopping worker hands the job back unused.
func TestSyntheticSleepInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	w := &jobs.SyntheticWorker{}
	job := &river.Job[jobs.SyntheticArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1}, Args: jobs.SyntheticArgs{SleepMS: 60_000}}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := w.Work(ctx, job)
	require.Less(t, time.Since(start), 5*time.Second)
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	require.EqualError(t, err, "synthetic sleep of 60000 ms interrupted: context canceled")

	start = time.Now()
	job.Args.SleepMS = 30
	require.NoError(t, w.Work(context.Background(), job))
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
}
