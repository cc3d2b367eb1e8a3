package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// TestHostileQueryValues: a page cursor or filter that cannot be stored in
// PostgreSQL (NUL, invalid UTF-8, over-long) is refused with 400 and a
// message naming it, never a 500 from the database.
func TestHostileQueryValues(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := serveConsole(t, db, nil)
	openBreaker(t, db.Pool, "payments")
	c := client(t)
	login(t, c, srv.URL)
	tests := []struct {
		path     string
		wantCode int
		wantText string
	}{
		{"/console/breakers?after=%00", 400, `invalid operation key &#34;\x00&#34;: control character U&#43;0000 at byte 0. Nothing was changed.`},
		{"/console/breakers?after=%ff%fe", 400, `invalid operation key &#34;\xff\xfe&#34;: not valid UTF-8. Nothing was changed.`},
		{"/console/breakers?state=open&after=a%00b", 400, `control character U&#43;0000 at byte 1`},
		{"/console/breakers?after=payment", 200, `payments`},
		{"/console/dlq?after=%00", 400, `cursor &#34;\x00&#34; is not one this API returned`},
		{"/console/dlq?kind=%ff", 400, `contains invalid UTF-8 (byte 0xff)`},
	}
	for _, tt := range tests {
		r := do(t, c, http.MethodGet, srv.URL+tt.path, nil, nil)
		require.Equal(t, tt.wantCode, r.code, tt.path)
		require.Contains(t, r.body, tt.wantText, tt.path)
	}
}

// TestForceHintNamesTheCLI: the console offers no force; a retry it refuses
// for want of force names the command that has it, and changes nothing.
func TestForceHintNamesTheCLI(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := serveConsole(t, db, nil)
	seedDeadLetters(t, db.Pool, 1, time.Minute, []string{"server_error"}, []string{"payments"})
	var id int64
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`UPDATE job_dead_letter_queue SET status = 'resolved', resolved_at = now(), resolved_by = 'test', resolution_note = 'n' RETURNING id`).Scan(&id))
	c := client(t)
	login(t, c, srv.URL)
	csrf := csrfOf(t, do(t, c, http.MethodGet, srv.URL+"/console/dlq", nil, nil).body)
	tests := []struct {
		path     string
		form     url.Values
		wantCode int
		wantText string
	}{
		{sprintf("/console/dlq/%d/retry", id), url.Values{"csrf": {csrf}}, 409,
			sprintf("entry %d; rebound dlq retry --force (not offered here) can retry it anyway. Nothing was changed.", id)},
		{"/console/dlq/retry", url.Values{"csrf": {csrf}, "status": {"resolved"}}, 400,
			"retrying resolved entries needs rebound dlq retry --force (not offered here). Nothing was changed."},
	}
	for _, tt := range tests {
		r := do(t, c, http.MethodPost, srv.URL+tt.path, tt.form, nil)
		require.Equal(t, tt.wantCode, r.code, tt.path)
		require.Contains(t, r.body, tt.wantText, tt.path)
	}
	require.Equal(t, 1, count(t, db.Pool, `SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved'`))
	require.Equal(t, 0, count(t, db.Pool, `SELECT count(*) FROM river_job`))
}

// TestDLQBadTarget: a dead-letter page or action whose entry ID or filter
// is invalid answers 400 with the DLQ tab current and one message naming
// the problem, and changes nothing.
func TestDLQBadTarget(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := serveConsole(t, db, nil)
	seedDeadLetters(t, db.Pool, 2, time.Minute, []string{"server_error"}, []string{"payments"})
	c := client(t)
	login(t, c, srv.URL)
	csrf := csrfOf(t, do(t, c, http.MethodGet, srv.URL+"/console/dlq", nil, nil).body)
	const badID = `invalid parameter: entry ID &#34;%s&#34; is not a positive integer. Nothing was changed.`
	tests := []struct {
		method, path string
		form         url.Values
		wantText     string
	}{
		{http.MethodGet, "/console/dlq/abc", nil, sprintf(badID, "abc")},
		{http.MethodGet, "/console/dlq/0", nil, sprintf(badID, "0")},
		{http.MethodPost, "/console/dlq/-1/retry", url.Values{"csrf": {csrf}}, sprintf(badID, "-1")},
		{http.MethodPost, "/console/dlq/x/resolve", url.Values{"csrf": {csrf}, "note": {"fixed"}}, sprintf(badID, "x")},
		{http.MethodPost, "/console/dlq/retry", url.Values{"csrf": {csrf}, "since": {"soon"}, "confirm": {"1"}}, "invalid parameter: since: &#34;soon&#34; is neither an RFC 3339 time nor an age such as 24h or 7d. Nothing was changed."},
		{http.MethodPost, "/console/dlq/resolve", url.Values{"csrf": {csrf}, "until": {"later"}, "note": {"fixed"}, "confirm": {"1"}}, "invalid parameter: until: &#34;later&#34; is neither an RFC 3339 time nor an age such as 24h or 7d. Nothing was changed."},
	}
	for _, tt := range tests {
		r := do(t, c, tt.method, srv.URL+tt.path, tt.form, nil)
		require.Equal(t, http.StatusBadRequest, r.code, tt.path)
		require.Contains(t, r.body, tt.wantText, tt.path)
		require.Contains(t, r.body, `<a href="/console/dlq" aria-current="page">`, tt.path)
	}
	require.Equal(t, 2, count(t, db.Pool, `SELECT count(*) FROM job_dead_letter_queue WHERE status = 'unresolved'`))
	require.Equal(t, 0, count(t, db.Pool, `SELECT count(*) FROM river_job`))
}
