package batch_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/batch"
)

// TestSubBatchesText: the sub-batches line counts in the singular or plural
// and gives true sizes: a batch of 3 in sub-batches of 10 is one sub-batch
// of 3, not "10 jobs", and the delay is shown only between sub-batches.
func TestSubBatchesText(t *testing.T) {
	t.Parallel()
	starts := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		total       int64
		size        int
		delay       time.Duration
		wantText    string
		wantShowRow string
	}{
		{"fewer than a sub-batch", 3, 10, 0, "1 sub-batch of 3 jobs", "  sub-batches:   1 sub-batch of 3 jobs, from 2026-12-02T10:00:00Z\n"},
		{"one job", 1, 10, 5 * time.Second, "1 sub-batch of 1 job", "  sub-batches:   1 sub-batch of 1 job, from 2026-12-02T10:00:00Z\n"},
		{"exactly one", 10, 10, 5 * time.Second, "1 sub-batch of 10 jobs", "  sub-batches:   1 sub-batch of 10 jobs, from 2026-12-02T10:00:00Z\n"},
		{"even", 20, 10, 5 * time.Second, "2 sub-batches of 10 jobs", "  sub-batches:   2 sub-batches of 10 jobs, 5s apart, from 2026-12-02T10:00:00Z\n"},
		{"smaller last", 25, 10, time.Minute, "3 sub-batches of 10 jobs (the last of 5)", "  sub-batches:   3 sub-batches of 10 jobs (the last of 5), 1m0s apart, from 2026-12-02T10:00:00Z\n"},
		{"sub-batches of one", 3, 1, 0, "3 sub-batches of 1 job", "  sub-batches:   3 sub-batches of 1 job, 0s apart, from 2026-12-02T10:00:00Z\n"},
		{"empty", 0, 10, 0, "no sub-batch", "  sub-batches:   no sub-batch, from 2026-12-02T10:00:00Z\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantText, batch.SubBatchesText(tt.total, int64(tt.size)))
			var b strings.Builder
			require.NoError(t, batch.WriteText(&b, &batch.Summary{ID: 1, Name: "b", Kind: "k", Total: tt.total, BatchSize: tt.size,
				DelayBetweenBatchesMS: tt.delay.Milliseconds(), StartsAt: starts}))
			var row string
			for _, l := range strings.SplitAfter(b.String(), "\n") {
				if strings.HasPrefix(l, "  sub-batches:") {
					row = l
				}
			}
			require.Equal(t, tt.wantShowRow, row)
		})
	}
}
