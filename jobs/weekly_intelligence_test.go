package jobs_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
)

func TestParseISOWeek(t *testing.T) {
	t.Parallel()
	tests := []struct {
		week    string
		monday  string
		wantErr string
	}{
		{week: "2026-W49", monday: "2026-11-30"},
		{week: "2026-W01", monday: "2025-12-29"},
		{week: "2020-W53", monday: "2020-12-28"},
		{week: "2021-W01", monday: "2021-01-04"},
		{week: "2021-W53", wantErr: `week "2021-W53": 2021 has no week 53`},
		{week: "2026-W00", wantErr: `week "2026-W00": 2026 has no week 0`},
		{week: "2026-W54", wantErr: `week "2026-W54": 2026 has no week 54`},
		{week: "2026-49", wantErr: `week "2026-49": want an ISO week such as 2026-W49`},
		{week: "2026-W5", wantErr: `week "2026-W5": want an ISO week such as 2026-W49`},
		{week: "2026-w49", wantErr: `week "2026-w49": want an ISO week such as 2026-W49`},
		{week: " 2026-W49", wantErr: `week " 2026-W49": want an ISO week such as 2026-W49`},
		{week: "", wantErr: `week "": want an ISO week such as 2026-W49`},
	}
	for _, tt := range tests {
		t.Run(tt.week, func(t *testing.T) {
			t.Parallel()
			got, err := jobs.ParseISOWeek(tt.week)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.monday, got.Format(time.DateOnly))
			require.Equal(t, time.Monday, got.Weekday())
			require.Equal(t, tt.week, jobs.ISOWeek(got))
		})
	}
}

// Every string ParseISOWeek accepts names the week of the Monday it
// returns; it never panics.
func FuzzParseISOWeek(f *testing.F) {
	for _, s := range []string{"2026-W49", "2020-W53", "0000-W01", "9999-W52", "2021-W53", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		monday, err := jobs.ParseISOWeek(s)
		if err != nil {
			return
		}
		if jobs.ISOWeek(monday) != s || monday.Weekday() != time.Monday {
			t.Fatalf("%q gave %s (%s)", s, monday, jobs.ISOWeek(monday))
		}
	})
}

func TestParseWeeklyIntelligenceArgs(t *testing.T) {
	t.Parallel()
	reg := jobs.Builtin()
	tests := []struct {
		raw     string
		want    jobs.WeeklyIntelligenceArgs
		wantErr string
	}{
		{raw: `{"user_id": 42, "week": "2026-W49"}`, want: jobs.WeeklyIntelligenceArgs{UserID: 42, Week: "2026-W49"}},
		{raw: `{"user_id": 0, "week": "2026-W49"}`, wantErr: "invalid args: user_id must be a positive integer, got 0"},
		{raw: `{"week": "2026-W49"}`, wantErr: "invalid args: user_id must be a positive integer, got 0"},
		{raw: `{"user_id": "42", "week": "2026-W49"}`, wantErr: "invalid args: user_id must be a number, not a string"},
		{raw: `{"user_id": 1.5, "week": "2026-W49"}`, wantErr: "invalid args: user_id must be a whole number, not 1.5"},
		{raw: `{"user_id": 1e30, "week": "2026-W49"}`, wantErr: "invalid args: user_id 1e30 is out of range"},
		// A whole number in range, written with an exponent or a fraction
		// encoding/json will not put in an integer: refused, but not as
		// "out of range".
		{raw: `{"user_id": 1e3, "week": "2026-W49"}`, wantErr: "invalid args: user_id must be written as a plain whole number (1000), not 1e3"},
		{raw: `{"user_id": 42.0, "week": "2026-W49"}`, wantErr: "invalid args: user_id must be written as a plain whole number (42), not 42.0"},
		{raw: `{"user_id": 9.3e18, "week": "2026-W49"}`, wantErr: "invalid args: user_id 9.3e18 is out of range"},
		{raw: `{"user_id": 42, "week": "2021-W53"}`, wantErr: `invalid args: week "2021-W53": 2021 has no week 53`},
		{raw: `{"user_id": 42}`, wantErr: `invalid args: week "": want an ISO week such as 2026-W49`},
		{raw: `{"user_id": 42, "week": "2026-W49", "email": "x"}`, wantErr: `invalid args: unknown field "email"`},
	}
	for _, tt := range tests {
		args, err := reg.Parse(jobs.KindWeeklyIntelligence, []byte(tt.raw))
		if tt.wantErr != "" {
			require.EqualError(t, err, tt.wantErr, tt.raw)
			require.ErrorIs(t, err, jobs.ErrInvalidArgs)
			continue
		}
		require.NoError(t, err, tt.raw)
		require.Equal(t, tt.want, args)
	}
	kind, err := reg.Lookup(jobs.KindWeeklyIntelligence)
	require.NoError(t, err)
	require.Equal(t, []jobs.Arg{
		{Name: "user_id", Type: "number", Help: "required: the user's ID upstream, a positive integer"},
		{Name: "week", Type: "string", Help: "required: the ISO 8601 week, YYYY-Www (e.g. 2026-W49)"},
	}, kind.Args)

	withURL := jobs.WeeklyIntelligenceKind(jobs.WeeklyIntelligenceConfig{BaseURL: "https://Reports.Example.com:8443/api"})
	require.Equal(t, "reports.example.com:8443", withURL.OperationKey([]byte(`{"user_id": 1, "week": "2026-W49"}`)))
	require.EqualError(t, jobs.WeeklyIntelligenceConfig{BaseURL: "reports.example.com"}.Validate(),
		`weekly_intelligence.base_url: "reports.example.com" is not an absolute http or https URL without query or fragment`)
}
