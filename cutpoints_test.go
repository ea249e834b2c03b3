package neuracraft

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cutHeadResponse is a typical response head; the tests cut the
// connection after each of its bytes.
const cutHeadResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\nContent-Length: 2\r\n\r\n"

// TestCutInsideResponseHead cuts the connection after every byte of a
// response head: a GET is retried and succeeds whatever the cut point,
// and a POST is never sent twice.
func TestCutInsideResponseHead(t *testing.T) {
	noLeaks(t)
	for n := range len(cutHeadResponse) {
		name := fmt.Sprintf("%02d_%q", n, cutHeadResponse[max(0, n-8):n])
		t.Run(name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, hit int) {
				if hit == 1 {
					_, _ = io.WriteString(c, cutHeadResponse[:n])
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			})
			tr := fastRetries()
			defer tr.CloseIdleConnections()

			get, err := http.NewRequest("GET", srv.url(), nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(get)
			require.NoError(t, err, "GET cut after %d bytes was not retried", n)
			_ = resp.Body.Close()
			assert.Equal(t, int32(2), srv.hits.Load())
			assertPOSTSentOnce(t, tr, srv.url(), &srv.hits)
		})
	}
}

// TestConnectionFailureDecisions pins down the connection failures that
// other SDKs retry (aws-sdk-go-v2: net.ErrClosed and any dial error), as
// IsRetryable's doc comment decides them.
func TestConnectionFailureDecisions(t *testing.T) {
	t.Parallel()
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"net.ErrClosed", fmt.Errorf("read: %w", net.ErrClosed), true},
		{"dial refused", dial(&net.OpError{Op: "connect", Err: syscall.ECONNREFUSED}), true},
		{"dial network unreachable", dial(syscall.ENETUNREACH), true},
		{"dial host unreachable", dial(syscall.EHOSTUNREACH), true},
		{"dial no local port", dial(syscall.EADDRNOTAVAIL), true},
		{"dial missing port", dial(&net.AddrError{Err: "missing port in address", Addr: "x"}), false},
		{"dial unknown network", dial(net.UnknownNetworkError("tcp9")), false},
		{"dial no such host", dial(&net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}), false},
		{"dial lookup timeout", dial(&net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}), true},
		{"read op, other error", &net.OpError{Op: "read", Err: errors.New("weird")}, false},
		{"dial timeout of the attempt", dial(os.ErrDeadlineExceeded), true},
		{"TLS handshake timeout of the attempt", fmt.Errorf("net/http: TLS handshake timeout: %w", os.ErrDeadlineExceeded), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsRetryable(tt.err))
			assert.Equal(t, tt.want, IsRetryable(&RequestError{Method: "GET", Err: tt.err}))
		})
	}
}

// TestDialErrorsForReal dials a closed port (refused: retryable) and a
// malformed address (not retryable) through http.Transport.
func TestDialErrorsForReal(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.Error(t, err)
	assert.True(t, IsRetryable(err), "%v", err)

	req, err = http.NewRequest("GET", "http://127.0.0.1:99999/", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.Error(t, err)
	assert.False(t, IsRetryable(err), "%v", err)
}

// TestHTTP2ResetCodes pins the stream-reset codes that are retryable, on
// a value of the shape net/http converts its stream errors into.
func TestHTTP2ResetCodes(t *testing.T) {
	t.Parallel()
	names := map[uint32]string{0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
		0x3: "FLOW_CONTROL_ERROR", 0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR",
		0x7: "REFUSED_STREAM", 0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR",
		0xb: "ENHANCE_YOUR_CALM", 0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED"}
	retryable := map[string]bool{"INTERNAL_ERROR": true, "STREAM_CLOSED": true, "REFUSED_STREAM": true,
		"CANCEL": true, "ENHANCE_YOUR_CALM": true}
	for code, name := range names {
		err := &RequestError{Method: "GET", Err: h2StreamError{StreamID: 1, Code: code}}
		assert.Equal(t, retryable[name], IsRetryable(err), name)
	}
}
