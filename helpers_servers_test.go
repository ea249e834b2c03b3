// Helpers for the tests of package neuracraft that run against real servers
// on loopback: Transports over a fresh http.Transport, calls through them,
// and the check that a test leaves no goroutine behind.

package neuracraft

import (
	"context"
	"io"
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

// loopbackTransport returns a Transport over a fresh http.Transport, whose
// idle connections are closed when t ends.
func loopbackTransport(t *testing.T, p RetryPolicy) *Transport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	tr := &Transport{Base: base, Retry: p}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func loopbackGet(ctx context.Context, tr *Transport, url, id string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Request-ID", id)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// noLeaks fails t if a goroutine started after this call still runs when
// t ends (a process-wide check: such a test is not parallel). Call it
// before anything that registers a cleanup of its own, so that the check
// runs after those. (helpers_lab_test.go has the same for package
// neuracraft_test.)
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}
