package metricstore_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/monitor/metricstore"
)

func TestRoundRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		percent, want float64
	}{
		{100, 100}, {0, 0},
		{100 * 10002.0 / 10005, 99.9}, // 99.97: not all
		{99.95, 99.9}, {99.94, 99.9}, {99.85, 99.9}, {96.66, 96.7},
		{100 * 3.0 / 10005, 0.1}, // 0.03: not none
		{0.04, 0.1}, {0.05, 0.1}, {0.15, 0.2}, {50, 50},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, metricstore.RoundRate(tt.percent), "%v", tt.percent)
	}
}

// Over every count up to 2,000 jobs, the rounded rate is within 0.1 of the
// exact one, is 100 only when no job failed and 0 only when none succeeded.
func TestRoundRateNeverAllOrNoneWhenNot(t *testing.T) {
	t.Parallel()
	for finished := 1; finished <= 2000; finished++ {
		for succeeded := 0; succeeded <= finished; succeeded++ {
			exact := 100 * float64(succeeded) / float64(finished)
			r := metricstore.RoundRate(exact)
			if math.Abs(r-exact) > 0.1+1e-9 {
				t.Fatalf("%d of %d: %v is more than 0.1 from %v", succeeded, finished, r, exact)
			}
			if (r == 100) != (succeeded == finished) || (r == 0) != (succeeded == 0) {
				t.Fatalf("%d of %d: %v", succeeded, finished, r)
			}
		}
	}
}
