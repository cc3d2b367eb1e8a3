package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// warehouse is the demo warehouse API the example calls when --api is not
// given: a real HTTP server on a loopback port. GET /stock/{sku} answers
// {"sku": ..., "units": n}, except:
//
//   - LIMIT: 429 with Retry-After: 1 the first time, then the stock;
//   - GONE: 404 (the SKU does not exist);
//   - BAD: 200 with a body that is not JSON;
//   - anything, while an outage is on: 503.
type warehouse struct {
	srv    *http.Server
	url    string
	outage atomic.Bool

	mu    sync.Mutex
	calls map[string]int
}

func startWarehouse() (*warehouse, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &warehouse{url: "http://" + l.Addr().String(), calls: map[string]int{}}
	w.srv = &http.Server{Handler: http.HandlerFunc(w.serve)}
	go func() { _ = w.srv.Serve(l) }()
	return w, nil
}

func (w *warehouse) serve(rw http.ResponseWriter, r *http.Request) {
	sku, ok := strings.CutPrefix(r.URL.Path, "/stock/")
	if !ok {
		http.NotFound(rw, r)
		return
	}
	w.mu.Lock()
	w.calls[sku]++
	n := w.calls[sku]
	w.mu.Unlock()
	switch {
	case w.outage.Load():
		rw.WriteHeader(http.StatusServiceUnavailable)
	case sku == "LIMIT" && n == 1:
		rw.Header().Set("Retry-After", "1")
		rw.WriteHeader(http.StatusTooManyRequests)
	case sku == "GONE":
		rw.WriteHeader(http.StatusNotFound)
	case sku == "BAD":
		fmt.Fprint(rw, `{"sku": "BAD", "units": lots}`)
	default:
		fmt.Fprintf(rw, `{"sku": %q, "units": %d}`, sku, 10+len(sku))
	}
}

func (w *warehouse) close() { _ = w.srv.Close() }
