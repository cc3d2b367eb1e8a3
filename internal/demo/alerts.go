package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/monitor/notify"
)

// demoSecret signs the demo's webhook bodies.
const demoSecret = "demo-webhook-secret"

// alertsConfig is the worker config's alerts section: evaluate every
// second, one webhook channel to the demo's receiver.
func alertsConfig(url string) string {
	return fmt.Sprintf("alerts:\n  interval: 1s\n  channels:\n    local: {type: webhook, url: %q, secret: %q}\n", url, demoSecret)
}

// receiver is the demo's webhook endpoint: it checks each body's signature
// and prints one line per alert.
type receiver struct {
	url      string
	srv      *http.Server
	mu       sync.Mutex
	firing   int
	resolved int
}

func startReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + l.Addr().String() + "/alerts"}
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		sig := "signature ok"
		if req.Header.Get(notify.SignatureHeader) != notify.Sign([]byte(demoSecret), body) {
			sig = "BAD SIGNATURE"
		}
		var p notify.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil || len(p.Alerts) == 0 {
			http.Error(w, "not an alert", http.StatusBadRequest)
			return
		}
		a := p.Alerts[0]
		fmt.Printf("    webhook <- %s: %s on %s (%s), %s [%s]\n", p.Status, a.Labels["alertname"], a.Labels["subject"], a.Labels["severity"], a.Annotations["summary"], sig)
		r.mu.Lock()
		if p.Status == "resolved" {
			r.resolved++
		} else if a.Annotations["event"] == "firing" {
			r.firing++
		}
		r.mu.Unlock()
	})}
	go r.srv.Serve(l) //nolint:errcheck
	return r, nil
}

func (r *receiver) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firing, r.resolved
}

func (r *receiver) close() { _ = r.srv.Close() }

// alertsDemo shows job health, then recovers every open breaker by hand
// and waits for a resolved notice per firing alert.
func alertsDemo(ctx context.Context, env []string, bin string, pool *pgxpool.Pool, hook *receiver) error {
	step("rebound health   (exit code 0 healthy, 2 degraded or unhealthy, 3 critical)")
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "rebound"), "health")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	printIndented(string(out))
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return fmt.Errorf("rebound health: %w", err)
	}
	fmt.Printf("    (exit code %d)\n", cmd.ProcessState.ExitCode())

	rows, err := pool.Query(ctx, "SELECT breaker_key FROM circuit_breaker_state WHERE state <> 'closed' ORDER BY breaker_key")
	if err != nil {
		return err
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, k)
	}
	rows.Close()
	for _, k := range keys {
		step("recovery: rebound breaker reset %s", k)
		if err := runCmd(ctx, env, filepath.Join(bin, "rebound"), "breaker", "reset", k, "--reason", "demo recovery"); err != nil {
			return err
		}
	}
	step("waiting for a resolved notice per alert that fired")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var stillFiring int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM job_alert_state WHERE firing_since IS NOT NULL AND rule = 'breaker-open'").Scan(&stillFiring); err != nil {
			return err
		}
		firing, resolved := hook.counts()
		if stillFiring == 0 && resolved >= firing && firing > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 20 s: %d firing and %d resolved notices received, %d alerts still firing", firing, resolved, stillFiring)
		}
		time.Sleep(200 * time.Millisecond)
	}
	step("rebound alerts history --limit 8")
	return runCmd(ctx, env, filepath.Join(bin, "rebound"), "alerts", "history", "--limit", "8")
}

func printIndented(s string) {
	for _, l := range splitLines(s) {
		fmt.Println("    " + l)
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
