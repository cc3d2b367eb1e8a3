package retrypolicy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestUnknownKindDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, time.Minute}, {1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {4, 8 * time.Minute},
		{5, 15 * time.Minute}, {6, 15 * time.Minute}, {1000, 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, retrypolicy.UnknownKindDelay(tt.n))
		})
	}
}

func TestIsUnknownKind(t *testing.T) {
	t.Parallel()
	job := &rivertype.JobRow{Kind: "h3job"}
	tests := []struct {
		name string
		job  *rivertype.JobRow
		err  error
		want bool
	}{
		{"River's error for the job's kind", job, &rivertype.UnknownJobKindError{Kind: "h3job"}, true},
		{"another kind (a worker inserting one)", job, &rivertype.UnknownJobKindError{Kind: "other"}, false},
		{"wrapped by a worker", job, fmt.Errorf("insert: %w", &rivertype.UnknownJobKindError{Kind: "h3job"}), false},
		{"another error", job, errors.New("boom"), false},
		{"no job", nil, &rivertype.UnknownJobKindError{Kind: "h3job"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, retrypolicy.IsUnknownKind(tt.job, tt.err))
		})
	}
}

// A job dead-lettered for an unknown kind says why in its last history
// entry: the rule does not retry, a day passed, or it was the last attempt.
func TestUnknownKindFinalReasons(t *testing.T) {
	t.Parallel()
	riverErr := &rivertype.UnknownJobKindError{Kind: "http_request"}
	msg := riverErr.Error()
	dayAgo := testNow.Add(-25 * time.Hour)
	tests := []struct {
		name        string
		rules       map[retrypolicy.Class]retrypolicy.Rule
		earlier     *time.Time
		attempt     int
		maxAttempts int
		wantError   string
		wantFinal   bool
	}{
		{name: "retried", attempt: 1, maxAttempts: 5, wantError: msg},
		{name: "the rule does not retry", rules: map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassUnknownKind: {Retry: false}},
			attempt: 1, maxAttempts: 5, wantFinal: true,
			wantError: msg + "; the kind's rule for unknown_kind does not retry, so it is dead-lettered"},
		{name: "a day since the first", earlier: &dayAgo, attempt: 1, maxAttempts: 5, wantFinal: true,
			wantError: msg + "; no pod registered the kind in 24h0m0s (since " + dayAgo.UTC().Format(time.RFC3339) + "), so it is dead-lettered"},
		{name: "its last attempt", attempt: 3, maxAttempts: 3, wantFinal: true,
			wantError: msg + "; it was the job's last attempt (max attempts 3), so it is dead-lettered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newTestRecorder(t, retrypolicy.Policy{Rules: tt.rules}, nil)
			job := jobRow(1, tt.attempt, tt.maxAttempts)
			if tt.earlier != nil {
				raw, err := json.Marshal(map[string]any{"output": retrypolicy.Output{Attempts: []retrypolicy.Attempt{
					{Attempt: 1, At: *tt.earlier, Class: retrypolicy.ClassUnknownKind, Error: msg}}}})
				require.NoError(t, err)
				job.Metadata = raw
			}
			res := rec.UnknownKind(job, riverErr)
			require.Equal(t, tt.wantFinal, res.Final)
			require.Equal(t, tt.wantError, res.Entry.Error)
			require.Equal(t, retrypolicy.ClassUnknownKind, res.Entry.Class)
		})
	}
}
