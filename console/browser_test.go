package console_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// TestBrowser drives the console in headless Chromium on a real pod with
// seeded data: a wrong token is refused, the login shows the open breaker
// and its alert, the DLQ filter, a retry (the new job exists), a resolve
// with a note, a POST whose CSRF token was removed (refused, nothing
// changed), a breaker reset, the logout. Screenshots go to
// $REBOUND_TEST_ARTIFACTS (default: a temporary directory).
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium := proctest.Tool(t, "chromium", "chromium")
	artifacts := os.Getenv("REBOUND_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(artifacts, 0o755))

	p := startPod(t)
	seedDeadLetters(t, p.pool, 40, 29*time.Minute, []string{"server_error", "rate_limited", "timeout", "not_found"}, []string{"payments.example", "mail.example"})
	openBreaker(t, p.pool, "payments.example")

	// Chromium also writes a singleton socket folder into TMPDIR
	// (org.chromium.Chromium.*): a folder of the test's own, removed with it.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TMPDIR="+t.TempDir()), chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute) // ~30 s on a quiet machine
	defer cancel()
	// Start the browser on ctx: a step's own timeout must not end it.
	require.NoError(t, chromedp.Do(ctx))

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, a := range actions {
			sctx, scancel := context.WithTimeout(ctx, time.Minute)
			err := chromedp.Do(sctx, a)
			scancel()
			if err != nil {
				shot(t, ctx, artifacts, "failed-"+regexp.MustCompile(`\W+`).ReplaceAllString(name, "-"))
				t.Fatalf("%s: action %d: %v", name, i, err)
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return s
	}
	location := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		return s
	}

	// A wrong token: 401 page with the message, no session.
	step("open the console", chromedp.Navigate(p.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("form.login")))
	require.Equal(t, p.url+"/console/login?next=%2Fconsole%2F", location())
	step("wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token-0123456789"),
		chromedp.Click(chromedp.CSS("form.login button")), chromedp.WaitVisible(chromedp.CSS("#login-error")))
	require.Equal(t, "Wrong admin token. Paste the value of REBOUND_ADMIN_TOKEN the workers run with.", text("#login-error"))
	shot(t, ctx, artifacts, "01-wrong-token")

	// Log in: the overview shows the open breaker and the alert.
	step("log in", chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("form.login button")), chromedp.WaitVisible(chromedp.CSS("#h-health")))
	require.Equal(t, p.url+"/console/", location())
	require.Contains(t, text("table[aria-labelledby=h-alerts] tbody"), "critical\tbreaker-open\tpayments.example")
	require.Contains(t, text("table[aria-labelledby=h-open] tbody"), "payments.example\topen")
	require.Contains(t, text("table[aria-labelledby=h-open] tbody"), "HTTP 503: Authorization: Bearer [REDACTED]", "the breaker's last error is redacted")
	require.Equal(t, "40", text("#h-dl + p"))
	shot(t, ctx, artifacts, "02-overview")

	// Filter the DLQ by class: the 10 server_error entries, nothing else.
	step("filter the DLQ", chromedp.Navigate(p.url+"/console/dlq"), chromedp.WaitVisible(chromedp.CSS("#f-class")),
		chromedp.SetValue(chromedp.CSS("#f-class"), "server_error"),
		chromedp.Click(chromedp.CSS("form.filters button")), chromedp.WaitVisible(chromedp.CSS(`form.filters a[href="/console/dlq"]`)))
	require.Equal(t, p.url+"/console/dlq?kind=&class=server_error&key=&status=&since=&until=", location())
	classes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tbody tr td:nth-child(4)")].map(td => td.textContent)`))
	require.NoError(t, err)
	require.Len(t, classes, 10)
	for _, c := range classes {
		require.Equal(t, "server_error", c)
	}
	shot(t, ctx, artifacts, "03-dlq-filtered")
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tbody tr td:first-child a")].map(a => a.textContent)`))
	require.NoError(t, err)
	retryID, resolveID, csrfID := ids[0], ids[1], ids[2]

	// The entry page redacts, shows the timeline, and retries.
	step("open an entry", chromedp.Click(chromedp.CSS(`tbody a[href="/console/dlq/`+retryID+`"]`)), chromedp.WaitVisible(chromedp.CSS("#h-timeline")))
	args := text(`pre[aria-label="Args"]`)
	require.Contains(t, args, `"api_token": "[REDACTED]"`)
	require.NotContains(t, args, "sk-live-SECRET")
	timeline, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table[aria-labelledby=h-timeline] tbody tr")].map(tr => [...tr.cells].slice(2, 5).map(c => c.textContent).join("|"))`))
	require.NoError(t, err)
	require.Equal(t, []string{"server_error|exponential|1s", "server_error|exponential|2s", "server_error||"}, timeline)
	shot(t, ctx, artifacts, "04-dlq-entry")
	step("retry it", chromedp.Click(chromedp.CSS(`form[action$="/retry"] button`)), chromedp.WaitVisible(chromedp.CSS("ul.result")))
	m := regexp.MustCompile(`retried as new job (\d+)\.`).FindStringSubmatch(text("ul.result"))
	require.NotNil(t, m, text("ul.result"))
	newJob, _ := strconv.ParseInt(m[1], 10, 64)
	require.Equal(t, 1, count(t, p.pool, `SELECT count(*) FROM river_job WHERE id = $1 AND kind = 'console_test_job' AND state = 'available'`, newJob))
	require.Equal(t, 1, count(t, p.pool, `SELECT count(*) FROM job_dead_letter_queue WHERE id = $1 AND status = 'retried' AND retried_job_id = $2`, retryID, newJob))
	shot(t, ctx, artifacts, "05-retried")

	// A POST without its CSRF token is refused and changes nothing.
	step("resolve without CSRF", chromedp.Navigate(p.url+"/console/dlq/"+csrfID), chromedp.WaitVisible(chromedp.CSS("#note")),
		chromedp.SendKeys(chromedp.CSS("#note"), "should not be saved"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action$="/resolve"] input[name=csrf]').remove()`),
		chromedp.Click(chromedp.CSS(`form[action$="/resolve"] button`)), chromedp.WaitVisible(chromedp.CSS("p.error")))
	require.Equal(t, "Missing or wrong CSRF token: reload the page and try again. Nothing was changed.", text("p.error"))
	require.Equal(t, 1, count(t, p.pool, `SELECT count(*) FROM job_dead_letter_queue WHERE id = $1 AND status = 'unresolved' AND resolution_note IS NULL`, csrfID))

	// Resolve another with a note.
	step("resolve with a note", chromedp.Navigate(p.url+"/console/dlq/"+resolveID), chromedp.WaitVisible(chromedp.CSS("#note")),
		chromedp.SendKeys(chromedp.CSS("#note"), "payments upstream fixed at 03:40; replay not needed"),
		chromedp.Click(chromedp.CSS(`form[action$="/resolve"] button`)), chromedp.WaitVisible(chromedp.CSS("ul.result")))
	require.Equal(t, 1, count(t, p.pool, `SELECT count(*) FROM job_dead_letter_queue WHERE id = $1 AND status = 'resolved' AND resolution_note = 'payments upstream fixed at 03:40; replay not needed' AND resolved_by = 'console'`, resolveID))

	// Reset the breaker after the confirmation page.
	step("breakers", chromedp.Navigate(p.url+"/console/breakers?state=open"), chromedp.WaitVisible(chromedp.CSS(`a[aria-label="Reset payments.example"]`)))
	shot(t, ctx, artifacts, "06-breakers")
	step("reset: confirm", chromedp.Click(chromedp.CSS(`a[aria-label="Reset payments.example"]`)), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/breakers/reset"]`)))
	require.Equal(t, 1, count(t, p.pool, `SELECT count(*) FROM circuit_breaker_state WHERE breaker_key = 'payments.example' AND state = 'open'`), "not before the confirmation")
	step("reset", chromedp.Click(chromedp.CSS(`form[action="/console/breakers/reset"] button`)), chromedp.WaitVisible(chromedp.CSS("ul.result")))
	require.Contains(t, text("ul.result"), `Breaker "payments.example" is closed`)
	require.Equal(t, 1, count(t, p.pool, `SELECT count(*) FROM circuit_breaker_state WHERE breaker_key = 'payments.example' AND state = 'closed' AND changed_by = 'console'`))

	// The same session opens the River UI.
	step("River UI", chromedp.Navigate(p.url+"/riverui/jobs/"+m[1]), chromedp.WaitVisible(chromedp.CSS("#root")))
	require.Equal(t, p.url+"/riverui/jobs/"+m[1], location())

	// On a phone-sized screen the overview fits the width (no sideways
	// scrolling of the page itself; wide tables scroll in their box).
	step("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(p.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("#h-health")))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	require.NoError(t, err)
	require.False(t, overflow, "the page is wider than a phone's screen")
	shot(t, ctx, artifacts, "07-phone-overview")
	step("laptop", chromedp.EmulateReset())

	// Log out: the console asks for the token again.
	step("log out", chromedp.Navigate(p.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("form.logout button")),
		chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.CSS("form.login")))
	step("after logout", chromedp.Navigate(p.url+"/console/breakers"), chromedp.WaitVisible(chromedp.CSS("#token")))
	require.Equal(t, p.url+"/console/login?next=%2Fconsole%2Fbreakers", location())
}

// shot saves a PNG of the viewport as dir/name.png.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}
