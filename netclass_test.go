// Tests of the classification of transport failures (netclass.go), each
// against the real net/http: a connection cut inside the response head,
// dial failures, the caller's own deadlines, the net/http errors read by
// their text, and HTTP/2 stream resets and GOAWAYs, over TLS from net/http's
// own server and frame by frame from a raw one. In every case a GET is
// retried when trying again could help, and a POST is never sent twice.

package neuracraft

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

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

// TestCallerDeadlinesAgree: http.Client.Timeout expiring and the
// context's deadline are both the caller's own deadline, not retryable;
// an attempt's own response-header timeout is.
func TestCallerDeadlinesAgree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &Transport{Base: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			<-req.Context().Done()
			// http.Client.Timeout closes req.Cancel after it marks the
			// timeout: waiting for it too makes the outcome certain.
			//lint:ignore SA1019 read, not set: net/http's client sets it
			if c := req.Cancel; c != nil {
				<-c
			}
			return nil, req.Context().Err()
		})}
		newReq := func(ctx context.Context) *http.Request {
			req, err := http.NewRequestWithContext(ctx, "GET", "https://api.neuracraft.com/v1/pipelines", nil)
			require.NoError(t, err)
			return req
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, ctxErr := (&http.Client{Transport: tr}).Do(newReq(ctx))
		require.Error(t, ctxErr)

		_, clientErr := (&http.Client{Transport: tr, Timeout: time.Second}).Do(newReq(context.Background()))
		require.Error(t, clientErr)
		require.Contains(t, clientErr.Error(), "Client.Timeout exceeded")

		assert.False(t, IsRetryable(ctxErr), "context deadline: %v", ctxErr)
		assert.False(t, IsRetryable(clientErr), "Client.Timeout: %v", clientErr)
	})
}

// TestNetHTTPText runs net/http into each error that netHTTPText reads
// by its text, so that a change of wording fails here.
func TestNetHTTPText(t *testing.T) {
	t.Parallel()
	classified := func(err error, kind int) bool {
		return inTree(err, func(e error) bool { return netHTTPText(e.Error()) == kind })
	}
	raw := func(t *testing.T, answer string) error {
		srv := newRawServer(t, func(c net.Conn, _ int) { _, _ = io.WriteString(c, answer) })
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest("GET", srv.url(), nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
		return err
	}
	for _, tc := range []struct {
		answer string
		cut    bool
	}{
		{"HTTP/1.1", true},
		{"HT", true},
		{"HTTP/1.1 20", true},
		{"HTTP/1.1 ", true},
		{"\x15\x03\x01\x00\x02\x02\x16", false}, // a TLS alert to a plain HTTP client
		{"SSH-2.0-OpenSSH_9.6\r\n", false},
		{"HTTX/1.1 200 OK\r\n\r\n", false}, // malformed HTTP version
		{"HTTP/1.1 2x0 OK\r\n\r\n", false}, // malformed HTTP status code, not cut
	} {
		t.Run(fmt.Sprintf("head %q", tc.answer), func(t *testing.T) {
			err := raw(t, tc.answer)
			assert.Equal(t, tc.cut, classified(err, textCutHead), "%v", err)
			assert.Equal(t, tc.cut, IsRetryable(err), "%v", err)
		})
	}
	t.Run("GOAWAY", func(t *testing.T) {
		srv := newH2Server(t, func(int) h2Action { return h2Action{doGoAway: true, goAway: 0x2} })
		tr := srv.transport()
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest("GET", srv.url(), nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
		assert.True(t, classified(err, textGoAway), "%v", err)
		assert.True(t, IsRetryable(err))
	})
	t.Run("HTTP/2 connection lost", func(t *testing.T) {
		srv := newH2Server(t, func(int) h2Action { return h2Action{stall: true, deaf: true} })
		tr := srv.transport()
		tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest("GET", srv.url(), nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
		assert.True(t, classified(err, textConnLost), "%v", err)
		assert.True(t, IsRetryable(err))
	})
	stallServer := func(t *testing.T, head string) string {
		release := make(chan struct{})
		srv := newRawServer(t, func(c net.Conn, _ int) {
			_, _ = io.WriteString(c, head)
			<-release
		})
		t.Cleanup(func() { close(release) })
		return srv.url()
	}
	t.Run("Client.Timeout awaiting headers", func(t *testing.T) {
		url := stallServer(t, "")
		_, err := (&http.Client{Timeout: 50 * time.Millisecond}).Get(url)
		require.Error(t, err)
		assert.True(t, classified(err, textClientTimeout), "%v", err)
		assert.False(t, IsRetryable(err))
	})
	t.Run("Client.Timeout reading the body", func(t *testing.T) {
		url := stallServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{")
		resp, err := (&http.Client{Timeout: 50 * time.Millisecond}).Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		require.Error(t, err)
		assert.True(t, classified(err, textClientTimeout), "%v", err)
		assert.False(t, IsRetryable(err))
	})
	t.Run("an attempt's response-header timeout stays retryable", func(t *testing.T) {
		url := stallServer(t, "")
		tr := &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}
		defer tr.CloseIdleConnections()
		_, err := (&http.Client{Transport: tr}).Get(url)
		require.Error(t, err)
		assert.False(t, classified(err, textClientTimeout), "%v", err)
		assert.True(t, IsRetryable(err))
	})
}

// TestHTTP2ResetsAndGoAway pins the stream-reset codes that are
// retryable, on a value of the shape net/http converts its stream errors
// into, and then sends each stream reset and GOAWAY code as the answer to
// the first attempt: the retryable ones make a GET succeed on its second
// attempt and leave a POST sent once; the others end the GET at once.
func TestHTTP2ResetsAndGoAway(t *testing.T) {
	t.Parallel()
	t.Run("every reset code, on a value", func(t *testing.T) {
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
	})
	tests := []struct {
		name  string
		first h2Action
		retry bool
	}{
		{"RST_STREAM INTERNAL_ERROR", h2Action{doRST: true, rst: 0x2}, true},
		{"RST_STREAM STREAM_CLOSED", h2Action{doRST: true, rst: 0x5}, true},
		{"RST_STREAM CANCEL", h2Action{doRST: true, rst: 0x8}, true},
		{"RST_STREAM ENHANCE_YOUR_CALM", h2Action{doRST: true, rst: 0xb}, true},
		{"GOAWAY INTERNAL_ERROR, then close", h2Action{doGoAway: true, goAway: 0x2}, true},
		{"GOAWAY ENHANCE_YOUR_CALM, then close", h2Action{doGoAway: true, goAway: 0xb}, true},
		{"GOAWAY NO_ERROR, then close", h2Action{doGoAway: true, goAway: 0x0}, true},
		{"RST_STREAM FLOW_CONTROL_ERROR", h2Action{doRST: true, rst: 0x3}, false},
		{"RST_STREAM INADEQUATE_SECURITY", h2Action{doRST: true, rst: 0xc}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newH2Server(t, func(hit int) h2Action {
				if hit == 1 {
					return tt.first
				}
				return h2Action{}
			})
			tr := fastRetries()
			tr.Base = srv.transport()
			defer tr.CloseIdleConnections()

			req, err := http.NewRequest("GET", srv.url(), nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			if !tt.retry {
				require.Error(t, err)
				assert.False(t, IsRetryable(err), "%v", err)
				assert.Equal(t, int32(1), srv.hits.Load())
				return
			}
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, "HTTP/2.0", resp.Proto)
			assert.Equal(t, int32(2), srv.hits.Load())
			assertPOSTSentOnce(t, tr, srv.url(), &srv.hits)
		})
	}
}

// TestHTTP2ResetOverTLS runs a real TLS HTTP/2 server whose handler
// aborts the first request, which net/http's server answers with
// RST_STREAM INTERNAL_ERROR before any response head: a GET through
// WrapClient is retried, a POST is not sent twice.
func TestHTTP2ResetOverTLS(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hits.Add(1) == 1 {
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "{}")
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	defer srv.Close()

	client := WrapClient(srv.Client())
	client.Transport.(*Transport).Retry = RetryPolicy{BaseDelay: time.Nanosecond}

	resp, err := client.Get(srv.URL + "/v1/pipelines")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "HTTP/2.0", resp.Proto)
	assert.Equal(t, int32(2), hits.Load())

	hits.Store(0)
	_, err = client.Post(srv.URL+"/v1/pipelines", "application/json", strings.NewReader("{}"))
	require.Error(t, err)
	assert.True(t, IsRetryable(err), "%v", err)
	assert.Contains(t, err.Error(), "INTERNAL_ERROR")
	assert.Equal(t, int32(1), hits.Load(), "POST sent twice")
}

// TestHTTP2CallerCancelNotRetried: when the caller's own context ends
// while the server holds the stream, net/http resets the stream with
// CANCEL itself; that is not retried.
func TestHTTP2CallerCancelNotRetried(t *testing.T) {
	t.Parallel()
	srv := newH2Server(t, func(int) h2Action { return h2Action{stall: true} })
	tr := fastRetries()
	tr.Base = srv.transport()
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-srv.received; cancel() }()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.url(), nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, IsRetryable(err))
	assert.Equal(t, int32(1), srv.hits.Load())

	// A reset that comes with the caller's cancellation is not retryable
	// either.
	both := errors.Join(h2StreamError{StreamID: 1, Code: h2Cancel}, context.Canceled)
	assert.False(t, IsRetryable(both))
}

// rawServer is a loopback listener that reads one request per connection
// and lets serve write whatever it likes, then closes the connection.
// hits counts the requests.
type rawServer struct {
	ln   net.Listener
	hits atomic.Int32
	wg   sync.WaitGroup
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/v1/pipelines" }

// newRawServer starts a rawServer that calls serve for each connection
// with its count, and stops it when t ends.
func newRawServer(t *testing.T, serve func(c net.Conn, hit int)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rawServer{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				serve(c, int(s.hits.Add(1)))
			})
		}
	})
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

// fastRetries is a Transport over a fresh http.Transport that retries at
// once, without a budget or a cooldown in the way.
func fastRetries() *Transport {
	return &Transport{
		Base:            &http.Transport{DisableKeepAlives: true},
		Retry:           RetryPolicy{BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond},
		DisableBudget:   true,
		DisableCooldown: true,
	}
}

// assertPOSTSentOnce sends a POST through tr to url, where the server
// fails it the way it failed the GET before, and checks that the failure
// is transient but the POST was sent only once: hits counts the
// server's requests.
func assertPOSTSentOnce(t *testing.T, tr http.RoundTripper, url string, hits *atomic.Int32) {
	t.Helper()
	hits.Store(0)
	post, err := http.NewRequest("POST", url, strings.NewReader(`{"name":"x"}`))
	require.NoError(t, err)
	_, err = tr.RoundTrip(post)
	require.Error(t, err)
	assert.True(t, IsRetryable(err), "the failure is transient: %v", err)
	assert.False(t, DefaultShouldRetry(post, err), "a POST is not sent again")
	assert.Equal(t, int32(1), hits.Load(), "POST sent twice")
}

// h2Action is what the raw HTTP/2 server does with a request: reset its
// stream with code rst, send GOAWAY with code goAway and close the
// connection, stall until the client gives up, or (all zero) answer 200.
type h2Action struct {
	rst, goAway uint32
	doRST       bool
	doGoAway    bool
	stall       bool
	deaf        bool // with stall: do not answer the client's pings either
}

// h2Server is a TLS listener that speaks just enough HTTP/2, frame by
// frame, to answer requests with stream resets and GOAWAY frames, which
// net/http's own server cannot be made to send.
type h2Server struct {
	ln       net.Listener
	hits     atomic.Int32
	deaf     atomic.Bool
	received chan struct{} // a request came (buffered, never blocks)
	wg       sync.WaitGroup
	pool     *x509.CertPool
}

func (s *h2Server) serveConn(c *tls.Conn, act func(int) h2Action, done chan struct{}) {
	defer c.Close()
	go func() { <-done; _ = c.Close() }() // ends with the test
	if c.HandshakeContext(context.Background()) != nil || c.ConnectionState().NegotiatedProtocol != "h2" {
		return
	}
	preface := make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	if writeFrame(c, frameSettings, 0, 0, nil) != nil {
		return
	}
	for {
		var h [9]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		payload := make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
		if _, err := io.ReadFull(c, payload); err != nil {
			return
		}
		typ, flags, stream := h[3], h[4], binary.BigEndian.Uint32(h[5:])&0x7fffffff
		var err error
		switch {
		case typ == frameSettings && flags&flagAck == 0:
			err = writeFrame(c, frameSettings, flagAck, 0, nil)
		case typ == framePing && flags&flagAck == 0 && !s.deaf.Load():
			err = writeFrame(c, framePing, flagAck, 0, payload)
		case typ == frameHeaders:
			a := act(int(s.hits.Add(1)))
			select { // after counting: the test may end at once
			case s.received <- struct{}{}:
			default:
			}
			switch {
			case a.stall:
				s.deaf.Store(a.deaf)
			case a.doRST:
				err = writeFrame(c, frameRST, 0, stream, binary.BigEndian.AppendUint32(nil, a.rst))
			case a.doGoAway:
				p := binary.BigEndian.AppendUint32(nil, stream) // this stream may have been processed
				_ = writeFrame(c, frameGoAway, 0, 0, binary.BigEndian.AppendUint32(p, a.goAway))
				return
			default: // ":status: 200" is entry 8 of HPACK's static table
				err = writeFrame(c, frameHeaders, flagEndHeaders|flagEndStream, stream, []byte{0x88})
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *h2Server) transport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool}, ForceAttemptHTTP2: true}
}

func (s *h2Server) url() string { return "https://" + s.ln.Addr().String() + "/v1/pipelines" }

func newH2Server(t *testing.T, act func(hit int) h2Action) *h2Server {
	t.Helper()
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	require.NoError(t, err)
	s := &h2Server{ln: ln, pool: pool, received: make(chan struct{}, 16)}
	done := make(chan struct{})
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serveConn(c.(*tls.Conn), act, done) })
		}
	})
	t.Cleanup(func() { close(done); _ = ln.Close(); s.wg.Wait() })
	return s
}

// Frame types and flags of RFC 9113 used here.
const (
	frameData, frameHeaders, frameRST, frameSettings, framePing, frameGoAway = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
	flagAck, flagEndStream, flagEndHeaders                                   = 0x1, 0x1, 0x4
)

func writeFrame(w io.Writer, typ, flags byte, stream uint32, payload []byte) error {
	var h [9]byte
	h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	h[3], h[4] = typ, flags
	binary.BigEndian.PutUint32(h[5:], stream&0x7fffffff)
	_, err := w.Write(append(h[:], payload...))
	return err
}

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
