package retrypolicy_test

import (
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
