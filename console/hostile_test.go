package console_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/console"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/health"
)

// TestHostileQueryValues: a page cursor or filter that cannot be stored in
// PostgreSQL (NUL, invalid UTF-8, over-long) is refused with 400 and a
// message naming it, never a 500 from the database.
func TestHostileQueryValues(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	dlq, err := deadletter.New(db.Pool, nil)
	require.NoError(t, err)
	con, err := console.New(console.Config{Pool: db.Pool, DLQ: dlq, Breakers: breaker.NewStore(db.Pool), Health: &health.Checker{DB: db.Pool},
		Token: testToken, Sessions: adminauth.NewSessions(testToken, 0)})
	require.NoError(t, err)
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
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
