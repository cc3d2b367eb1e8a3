package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fast path's progress bar starts as a spinner (the input's length is
// not known yet) and becomes a bar once it is: the bar then counts every
// line copied so far, not only those copied after the switch.
func TestProgressBarKeepsTheSpinnersCountWhenTheTotalIsKnown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		beforeKnown int // lines added while the spinner turned
		total       int
		after       int // lines added once the total is known
		wantNum     int64
		wantPercent float64
	}{
		{name: "known before anything was copied", beforeKnown: 0, total: 100000, after: 10000, wantNum: 10000, wantPercent: 0.1},
		{name: "three batches under the spinner", beforeKnown: 30000, total: 100000, after: 20000, wantNum: 50000, wantPercent: 0.5},
		{name: "a count the bar's width divides", beforeKnown: 40, total: 100, after: 0, wantNum: 40, wantPercent: 0.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			bar := newInsertBar(&out, "synthetic", -1)
			for added := 0; added < tt.beforeKnown; added += 10000 {
				require.NoError(t, bar.Add(min(10000, tt.beforeKnown-added)))
			}
			bar = knownMax(bar, &out, "synthetic", tt.total)
			if tt.after > 0 {
				require.NoError(t, bar.Add(tt.after))
			}
			st := bar.State()
			require.Equal(t, int64(tt.total), st.Max)
			require.Equal(t, tt.wantNum, st.CurrentNum)
			require.InDelta(t, tt.wantPercent, st.CurrentPercent, 1e-9)
		})
	}
}
