// Tests of IsRetryable: which failures trying again could help, attempt
// timeouts included.

package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsRetryable(t *testing.T) {
	registerPluginCodesForTest(t,
		PluginCodeInfo{Code: 8960, Name: "Index Rebuilding", Retryable: true},
		PluginCodeInfo{Code: 8961, Name: "Template Invalid"})
	api := func(status int, body string) error { return apiErrorFor(t, status, body) }
	const u = "https://api.neuracraft.com/v1/pipelines"
	opErr := func(op string, err error) error { return &net.OpError{Op: op, Net: "tcp", Err: err} }
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: u, Err: err} }
	cooldown := &CooldownError{Method: "GET", URL: u, RequestID: "req_c", Host: "api.neuracraft.com",
		Cause: CodeTooManyRequests, RetryAfter: 20 * time.Second}

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"400", api(400, ""), false},
		{"401", api(401, string(readErrorFile(t, "invalid_api_key.json"))), false},
		{"403", api(403, string(readErrorFile(t, "insufficient_scope.json"))), false},
		{"404", api(404, string(readErrorFile(t, "not_found.json"))), false},
		{"409", api(409, ""), false},
		{"422", api(422, ""), false},
		{"429", api(429, ""), true},
		{"500", api(500, ""), true},
		{"502", api(502, string(readErrorFile(t, "nginx_502.html"))), true},
		{"503", api(503, ""), true},
		{"504", api(504, string(readErrorFile(t, "cloudflare_504.html"))), true},
		{"400 body says retryable", api(400, `{"error":{"code":"busy","message":"m","retryable":true}}`), true},
		{"503 body says not retryable", api(503, `{"error":{"code":"maintenance","message":"m","retryable":false}}`), false},
		{"500 plugin says not retryable", api(500, string(readErrorFile(t, "plugin_8102.json"))), false},
		{"503 plugin says retryable", api(503, string(readErrorFile(t, "plugin_8102_string_code.json"))), true},
		{"registered retryable plugin, 400", api(400, `{"error":{"code":8960,"message":"m"}}`), true},
		{"registered non-retryable plugin, 503", api(503, `{"error":{"code":8961,"message":"m"}}`), false},
		{"unregistered plugin, 429", api(429, `{"error":{"code":8992,"message":"m"}}`), true},
		{"unregistered plugin, 503", api(503, `{"error":{"code":8992,"message":"m"}}`), true},
		{"unregistered plugin, 500", api(500, `{"error":{"code":8992,"message":"m"}}`), false},
		{"unregistered plugin, 502", api(502, `{"error":{"code":"8992","message":"m"}}`), false},
		{"unregistered plugin, 400", api(400, `{"error":{"code":8992,"message":"m"}}`), false},
		{"500 in url.Error", urlErr(api(500, "")), true},
		{"404 in url.Error", urlErr(api(404, "")), false},
		{"503 wrapped twice", fmt.Errorf("sync: %w", urlErr(fmt.Errorf("attempt 5: %w", api(503, "")))), true},

		{"nil", nil, false},
		{"plain error", errors.New("pipeline config invalid"), false},
		{"io.EOF", io.EOF, true},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, true},
		{"EOF in url.Error", urlErr(io.EOF), true},
		{"ECONNRESET", urlErr(opErr("read", os.NewSyscallError("read", syscall.ECONNRESET))), true},
		{"ECONNREFUSED", urlErr(opErr("dial", os.NewSyscallError("connect", syscall.ECONNREFUSED))), true},
		{"net.Error timeout", netTimeoutError{}, true},
		{"timeout in url.Error", urlErr(opErr("read", os.ErrDeadlineExceeded)), true},
		{"timeout wrapped with %w in url.Error", // as http.Client returns a network failure from Transport
			urlErr(fmt.Errorf("neuracraft: GET /v1/pipelines (request r1, attempt 1): %w", opErr("read", os.ErrDeadlineExceeded))), true},
		{"net.Error without timeout", urlErr(opErr("read", errors.New("protocol error"))), false},
		{"DNS timeout", &net.DNSError{Err: "timeout", Name: "api.neuracraft.com", IsTimeout: true}, true},
		{"DNS no such host", urlErr(opErr("dial", &net.DNSError{Err: "no such host", Name: "api.neuracraft.com", IsNotFound: true})), false},
		{"context.Canceled", context.Canceled, false},
		{"context.DeadlineExceeded", context.DeadlineExceeded, false},
		{"Canceled in url.Error", urlErr(context.Canceled), false},
		{"DeadlineExceeded in url.Error", urlErr(context.DeadlineExceeded), false},
		{"503, then canceled while waiting", fmt.Errorf("%w; retry abandoned: %w", api(503, ""), context.Canceled), false},
		{"CooldownError", cooldown, true},
		{"CooldownError in url.Error", urlErr(cooldown), true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, IsRetryable(tt.err), "%s: IsRetryable(%v)", tt.name, tt.err)
	}
}

// TestIsRetryableAttemptTimeouts: net/http makes an attempt's own timeout
// (here ResponseHeaderTimeout) match context.DeadlineExceeded, but it is a
// timeout of one attempt and retryable; the caller's deadline is not.
func TestIsRetryableAttemptTimeouts(t *testing.T) {
	t.Parallel()
	tr := &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}
	defer tr.CloseIdleConnections()
	stall := make(chan struct{}) // the server sends no headers until closed
	raw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer raw.Close()
	defer close(stall)

	_, err := (&http.Client{Transport: tr}).Get(raw.URL)
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded, "net/http's own matching, which IsRetryable must see past")
	assert.True(t, IsRetryable(err))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL, nil)
	_, err = (&http.Client{Transport: &http.Transport{}}).Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, IsRetryable(err), "the caller's deadline is not retryable")
}

// netTimeoutError is a net.Error that timed out.
type netTimeoutError struct{}

func (netTimeoutError) Error() string { return "i/o timeout" }

func (netTimeoutError) Timeout() bool { return true }

func (netTimeoutError) Temporary() bool { return true }
