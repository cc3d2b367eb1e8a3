package main

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// faultProxy is a TCP proxy between a worker and PostgreSQL that can reset
// every connection or stall every byte.
type faultProxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // proxyPass, proxyReset, proxyStall
	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{}
	wg     sync.WaitGroup
}

const (
	proxyPass int32 = iota
	proxyReset
	proxyStall
)

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{ln: ln, target: target, conns: map[*net.TCPConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		client := c.(*net.TCPConn)
		if p.mode.Load() == proxyReset {
			_ = client.SetLinger(0)
			_ = client.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		server := s.(*net.TCPConn)
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

// pipe copies from src to dst, holding each chunk while the proxy stalls.
func (p *faultProxy) pipe(dst, src *net.TCPConn) {
	defer p.wg.Done()
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && p.mode.Load() == proxyStall {
			time.Sleep(20 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = dst.SetLinger(0)
			}
			return
		}
	}
}

// closeAll resets every open connection.
func (p *faultProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.SetLinger(0)
		_ = c.Close()
		delete(p.conns, c)
	}
}

// fault resets or stalls every connection for d, then lets traffic pass.
func (p *faultProxy) fault(mode int32, d time.Duration) {
	p.mode.Store(mode)
	if mode == proxyReset {
		p.closeAll()
	}
	time.Sleep(d)
	p.mode.Store(proxyPass)
}

// A TCP proxy between the worker and PostgreSQL resets every connection
// for 10 s, or in a second run stalls every byte for 10 s, while the
// worker works 1,500 synthetic jobs: the worker recovers and finishes
// every job, nothing is lost, nothing stays running, nothing is
// dead-lettered.
func TestDrillDatabaseConnectionFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		mode int32
	}{{"reset", proxyReset}, {"stall", proxyStall}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			const n = 1500
			enqueueLines(t, db, repeat(n, `{"sleep_ms": 20}`))
			u, err := url.Parse(db.URL)
			require.NoError(t, err)
			proxy := newFaultProxy(t, u.Host)
			u.Host = proxy.ln.Addr().String()

			worker := proctest.StartWorker(t, u.String(), append([]string{"--queues", "default=20"}, fastRescue...)...)
			waitFor(t, time.Minute, func() bool {
				return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed'") >= 200
			})
			proxy.fault(tt.mode, 10*time.Second)

			waitSettled(t, db.Pool, 3*time.Minute, worker.Logs)
			require.Equal(t, n, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed'"), worker.Logs())
			require.Equal(t, 0, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue"))
			lost := count(t, db.Pool, `SELECT count(*) FROM river_job WHERE metadata->'output'->'attempts' @> '[{"class": "lost"}]'`)
			t.Logf("%s: %d jobs came back through the rescuer", tt.name, lost)
		})
	}
}
