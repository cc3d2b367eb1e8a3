package batch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// startPodProcess builds testdata/pod (once per test) and starts it; it is
// stopped (stdin closed, then killed) when the test ends.
func startPodProcess(t *testing.T, bin, databaseURL, addr string) *proctest.SyncBuffer {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL, "HTTP_ADDR="+addr)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out := &proctest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return out
}

var completedMetric = regexp.MustCompile(`(?m)^rebound_batches_completed_total\{kind="test_batch_item"\} (\d+)$`)

// The completion fires once with two pods in two processes: completed_at
// set once, one callback job, one callback run, the metric counted by one
// pod only.
func TestCompletionOnceWithTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	up := newUpstream(t)
	bin := filepath.Join(t.TempDir(), "pod")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/pod").CombinedOutput()
	require.NoError(t, err, string(out))

	addrs := []string{proctest.FreeAddr(t), proctest.FreeAddr(t)}
	logs := []*proctest.SyncBuffer{startPodProcess(t, bin, db.URL, addrs[0]), startPodProcess(t, bin, db.URL, addrs[1])}
	for _, addr := range addrs {
		waitFor(t, 30*time.Second, "pod at "+addr+" ready", func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	client, err := river.NewClient[pgx.Tx](riverpgxv5.New(db.Pool), &river.Config{})
	require.NoError(t, err)
	p, err := batch.New(db.Pool, client, &batch.Config{BatchSize: 10})
	require.NoError(t, err)
	var ids []int64
	for b := range 3 {
		items := make([]river.JobArgs, 30)
		for i := range items {
			path := "/ok/"
			if i%10 == 0 {
				path = "/bad/"
			}
			items[i] = itemArgs{URL: fmt.Sprintf("%s%s%d-%d", up.URL, path, b, i)}
		}
		res, err := p.Enqueue(ctx, batch.Batch{Name: fmt.Sprintf("twice-%d", b), Kind: "test_batch_item", Items: items, CallbackKind: "test_batch_done"})
		require.NoError(t, err)
		ids = append(ids, res.ID)
	}
	for _, id := range ids {
		var s *batch.Summary
		waitFor(t, 60*time.Second, fmt.Sprintf("batch %d to complete", id), func() bool {
			s, err = batch.GetSummary(ctx, db.Pool, id)
			require.NoError(t, err)
			return s.CompletedAt != nil
		})
		require.Equal(t, int64(27), s.Succeeded)
		require.Equal(t, int64(3), s.Failed)
		require.NotNil(t, s.CallbackJobID)
	}
	want := func(id int64) string { return fmt.Sprintf("callback batch=%d succeeded=27 failed=3\n", id) }
	waitFor(t, 30*time.Second, "the callbacks", func() bool {
		all := logs[0].String() + logs[1].String()
		for _, id := range ids {
			if !strings.Contains(all, want(id)) {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second) // several more folds by each pod

	all := logs[0].String() + logs[1].String()
	for _, id := range ids {
		require.Equal(t, 1, strings.Count(all, want(id)), "one callback run for batch %d", id)
	}
	var callbacks int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'test_batch_done'").Scan(&callbacks))
	require.Equal(t, 3, callbacks)
	total := 0
	for _, addr := range addrs {
		resp, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		if m := completedMetric.FindStringSubmatch(string(body)); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	require.Equal(t, 3, total, "each batch counted by one pod")
}
