package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/jobs"
)

func TestReadCSV(t *testing.T) {
	t.Parallel()
	weekly, err := jobs.Builtin().Lookup(jobs.KindWeeklyIntelligence)
	require.NoError(t, err)
	http, err := jobs.Builtin().Lookup(jobs.KindHTTPRequest)
	require.NoError(t, err)
	tests := []struct {
		name    string
		kind    jobs.Kind
		csv     string
		want    []string
		wantErr string
	}{
		{name: "typed", kind: weekly, csv: "user_id,week\n42,2026-W49\n 7 ,2026-W01\n",
			want: []string{`{"user_id":42,"week":"2026-W49"}`, `{"user_id":7,"week":"2026-W01"}`}},
		{name: "byte order mark and CRLF", kind: weekly, csv: "\ufeffuser_id,week\r\n42,2026-W49\r\n", want: []string{`{"user_id":42,"week":"2026-W49"}`}},
		{name: "JSON cell and empty cell", kind: http, csv: "url,headers,timeout_seconds\nhttp://x/a,\"{\"\"X-A\"\": \"\"1\"\"}\",\n",
			want: []string{`{"url":"http://x/a","headers":{"X-A":"1"}}`}},
		{name: "not a number", kind: weekly, csv: "user_id,week\nforty,2026-W49\n", wantErr: `users.csv line 2: column user_id: want a number, not "forty" (nothing inserted)`},
		{name: "NaN is not a number", kind: weekly, csv: "user_id,week\nNaN,2026-W49\n", wantErr: `users.csv line 2: column user_id: want a number, not "NaN" (nothing inserted)`},
		{name: "fraction for an integer", kind: weekly, csv: "user_id,week\n4.5,2026-W49\n", wantErr: "users.csv line 2: invalid args: "},
		{name: "bad week", kind: weekly, csv: "user_id,week\n1,2026-W60\n", wantErr: `users.csv line 2: invalid args: week "2026-W60": 2026 has no week 60 (nothing inserted)`},
		{name: "missing column", kind: weekly, csv: "user_id\n1\n2\n", wantErr: `users.csv line 2: invalid args: week "": want an ISO week such as 2026-W49 (and 1 more bad lines; nothing inserted)`},
		{name: "ragged row", kind: weekly, csv: "user_id,week\n1,2026-W49,x\n", wantErr: "users.csv line 2: 3 fields, but the header has 2 (nothing inserted)"},
		{name: "duplicate column", kind: weekly, csv: "user_id,user_id\n1,2\n", wantErr: `users.csv line 1: column "user_id" appears twice (nothing inserted)`},
		{name: "unnamed column", kind: weekly, csv: "user_id,\n1,2\n", wantErr: "users.csv line 1: column 2 has no name (nothing inserted)"},
		{name: "invalid UTF-8", kind: weekly, csv: "user_id,week\n1,2026-W49\xff\n", wantErr: "users.csv line 2: column week: not valid UTF-8 (nothing inserted)"},
		{name: "empty", kind: weekly, csv: "", wantErr: "users.csv: empty (want a header row naming the args fields; nothing inserted)"},
		{name: "bare quote", kind: weekly, csv: "user_id,week\n1,20\"26\n", wantErr: `users.csv line 2: a " inside a cell that does not start with " (quote the whole cell and double each " in it: "say ""hi""") (nothing inserted)`},
		{name: "unclosed quote", kind: weekly, csv: "user_id,week\n1,\"2026-W49\n", wantErr: `users.csv line 2: a quoted cell is not closed, or a " inside it is not doubled (nothing inserted)`},
		{name: "NDJSON read as CSV", kind: weekly, csv: `{"user_id": 1, "week": "2026-W49"}` + "\n", wantErr: `users.csv line 1: a " inside a cell that does not start with " (quote the whole cell and double each " in it: "say ""hi"""); it looks like NDJSON (it starts with {): give --format ndjson (nothing inserted)`},
		{name: "NDJSON without quotes read as CSV", kind: weekly, csv: "{}\n", wantErr: `users.csv line 1: column "{}" is not a field of weekly_intelligence args (fields: user_id, week); it looks like NDJSON (it starts with {): give --format ndjson (nothing inserted)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, err := readCSV(tt.kind, "users.csv", strings.NewReader(tt.csv), strings.HasPrefix(tt.csv, "{"))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, l := range lines {
				b, err := json.Marshal(l.args)
				require.NoError(t, err)
				got = append(got, string(b))
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// readCSV never panics, and what it accepts is storable: valid UTF-8
// without NUL.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{"user_id,week\n42,2026-W49\n", "user_id\n1\n", "a,b\n\"x", "user_id,week\n1,2026-W49,3\n"} {
		f.Add(s)
	}
	weekly, err := jobs.Builtin().Lookup(jobs.KindWeeklyIntelligence)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		lines, err := readCSV(weekly, "f.csv", strings.NewReader(in), false)
		if err != nil {
			return
		}
		for _, l := range lines {
			b, err := json.Marshal(l.args)
			if err != nil || !utf8.Valid(b) || strings.Contains(string(b), `\u0000`) {
				t.Fatalf("accepted %q as %s (%v)", in, b, err)
			}
		}
	})
}

// The enqueued line names the last sub-batch's time, and its date when it
// falls on another day than the first (a time of day alone would read as
// today); it counts jobs, sub-batches and duplicates in the singular or
// plural and gives the sub-batches' true sizes (3 items in sub-batches of
// 10 are one sub-batch of 3; the last of several may be smaller).
func TestEnqueuedTextLastSubBatch(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.Local)
	tests := []struct {
		name        string
		total, dups int
		size        int
		delay       time.Duration
		want        string
	}{
		{"same day", 3, 0, 1, time.Hour, `enqueued batch 7 "b": 3 synthetic jobs in 3 sub-batches of 1 job, 1h0m0s apart (last at 12:00:00) in 5ms`},
		{"another day", 3, 0, 1, 20 * time.Hour, `enqueued batch 7 "b": 3 synthetic jobs in 3 sub-batches of 1 job, 20h0m0s apart (last at 2026-12-04 02:00:00) in 5ms`},
		{"fewer items than a sub-batch", 3, 0, 10, 5 * time.Second, `enqueued batch 7 "b": 3 synthetic jobs in 1 sub-batch of 3 jobs in 5ms`},
		{"one item", 1, 0, 10, 5 * time.Second, `enqueued batch 7 "b": 1 synthetic job in 1 sub-batch of 1 job in 5ms`},
		{"a smaller last sub-batch", 25, 0, 10, time.Hour, `enqueued batch 7 "b": 25 synthetic jobs in 3 sub-batches of 10 jobs (the last of 5), 1h0m0s apart (last at 12:00:00) in 5ms`},
		{"even sub-batches", 20, 0, 10, time.Hour, `enqueued batch 7 "b": 20 synthetic jobs in 2 sub-batches of 10 jobs, 1h0m0s apart (last at 11:00:00) in 5ms`},
		{"one duplicate", 2, 1, 10, 0, `enqueued batch 7 "b": 2 synthetic jobs in 1 sub-batch of 3 jobs; skipped 1 duplicate in 5ms`},
		{"two duplicates", 1, 2, 10, 0, `enqueued batch 7 "b": 1 synthetic job in 1 sub-batch of 3 jobs; skipped 2 duplicates in 5ms`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			subs := (tt.total + tt.dups + tt.size - 1) / tt.size
			var at []time.Time
			for k := range subs {
				at = append(at, t0.Add(time.Duration(k)*tt.delay))
			}
			if tt.delay == 0 {
				at = at[:1]
			}
			res := &batch.Enqueued{ID: 7, Name: "b", Kind: "synthetic", Total: tt.total, SkippedDuplicates: tt.dups, ScheduledAt: at}
			got := enqueuedText(res, &batchOptions{batchSize: tt.size, delay: tt.delay}, 5*time.Millisecond)
			require.Equal(t, tt.want, got)
		})
	}
}
