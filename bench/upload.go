// This file holds scenario 4, the large upload retried once: a 100 MiB
// body whose first attempt gets a 503, and what that costs in client
// memory.

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// uploadServer reads every request body to its end, then answers 503 (no
// Retry-After) to the first attempt and 200 to the others.
type uploadServer struct {
	*httptest.Server
	attempts atomic.Int64
	received atomic.Int64 // body bytes read
}

func newUploadServer() *uploadServer {
	s := &uploadServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.received.Add(n)
		w.Header().Set("Content-Type", "application/json")
		if s.attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(errorBody(503, "service_unavailable", "Upload not accepted; try again.")))
			return
		}
		_, _ = w.Write(okBody)
	}))
	return s
}

const (
	heapMetric   = "/memory/classes/heap/objects:bytes"
	allocsMetric = "/gc/heap/allocs:bytes"
)

// measureHeap runs f and returns the peak of the heap's object bytes over
// a baseline taken after a GC, sampled every interval, and the bytes
// allocated while f ran.
func measureHeap(interval time.Duration, f func()) (peak, allocated uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: heapMetric}, {Name: allocsMetric}}
	metrics.Read(s)
	base, allocs0 := s[0].Value.Uint64(), s[1].Value.Uint64()

	var maxHeap atomic.Uint64
	maxHeap.Store(base)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		sample := []metrics.Sample{{Name: heapMetric}}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > maxHeap.Load() {
					maxHeap.Store(v)
				}
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	metrics.Read(s)
	if v := s[0].Value.Uint64(); v > maxHeap.Load() {
		maxHeap.Store(v)
	}
	return maxHeap.Load() - base, s[1].Value.Uint64() - allocs0
}

// uploadResult is one run of scenario 4 for one client.
type uploadResult struct {
	peak, allocated uint64
	attempts        int64
	received        int64
	ok              bool
	wall            time.Duration
}

// runUpload runs scenario 4 once for a fresh client of kind k. plain
// passes the body to retryablehttp as a bare io.Reader.
func runUpload(k kind, plain bool, cfg *config) (uploadResult, error) {
	srv := newUploadServer()
	defer srv.Close()
	c := newClient(k)
	defer c.close()
	var res uploadResult
	var status int
	var err error
	res.peak, res.allocated = measureHeap(time.Millisecond, func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.callTimeout)
		defer cancel()
		start := time.Now()
		status, err = c.do(ctx, &call{method: http.MethodPost, url: srv.URL + "/v1/uploads",
			gen: cfg.uploadSize, plainReader: plain})
		res.wall = time.Since(start)
	})
	res.ok = ok(status, err)
	res.attempts, res.received = srv.attempts.Load(), srv.received.Load()
	if res.received < res.attempts*cfg.uploadSize {
		return res, fmt.Errorf("scenario 4: %s: server received %d bytes in %d attempts", k, res.received, res.attempts)
	}
	return res, nil
}

// scenarioUpload runs scenario 4 cfg.fastReps times per client,
// interleaved, plus retryablehttp given a bare io.Reader, for reference.
func scenarioUpload(t *table, cfg *config) error {
	var peak, allocated, attempts, okCalls, wall series
	var refPeak, refAlloc []float64
	const mib = 1 << 20
	for rep := range cfg.fastReps {
		for _, k := range order(rep) {
			r, err := runUpload(k, false, cfg)
			if err != nil {
				return err
			}
			peak.add(k, float64(r.peak)/mib)
			allocated.add(k, float64(r.allocated)/mib)
			attempts.add(k, float64(r.attempts))
			okCalls.add(k, b2f(r.ok))
			wall.add(k, r.wall.Seconds())
			cfg.progress("scenario 4: %s repetition %d: peak %.2f MiB, allocated %.2f MiB, %d attempts, ok %v",
				k, rep+1, float64(r.peak)/mib, float64(r.allocated)/mib, r.attempts, r.ok)
		}
		r, err := runUpload(retryable, true, cfg)
		if err != nil {
			return err
		}
		refPeak = append(refPeak, float64(r.peak)/mib)
		refAlloc = append(refAlloc, float64(r.allocated)/mib)
	}
	name := fmt.Sprintf("4. Upload %d MiB, 503 then 200", cfg.uploadSize/mib)
	t.add(name, "client peak heap over baseline (MiB)", "%.2f", &peak)
	t.add(name, "bytes allocated during the call (MiB)", "%.2f", &allocated)
	t.add(name, "attempts received by the server", "%.0f", &attempts)
	t.add(name, "call succeeded (1 = yes)", "%.0f", &okCalls)
	t.add(name, "call time (s)", "%.2f", &wall)
	// For reference: the same call through retryablehttp when handed the
	// body as a plain io.Reader, which it reads into memory first.
	ref := series{}
	ref[retryable] = refPeak
	t.add(name, "ref.: retryablehttp given an io.Reader: peak heap (MiB)", "%.2f", &ref)
	ref[retryable] = refAlloc
	t.add(name, "ref.: retryablehttp given an io.Reader: allocated (MiB)", "%.2f", &ref)

	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
