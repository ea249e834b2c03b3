// Helpers for the tests of package neuracraft that run against real servers
// on loopback: Transports over a fresh http.Transport and calls through
// them.

package neuracraft

import (
	"context"
	"io"
	"net/http"
	"testing"
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
