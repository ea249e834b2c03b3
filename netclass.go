// This file classifies the transport failures that net/http reports
// without a type of its own to test: HTTP/2 stream resets and GOAWAYs, a
// connection cut inside the response head, dial failures, and the
// http.Client.Timeout of the caller.

package neuracraft

import (
	"errors"
	"net"
	"net/textproto"
	"strconv"
	"strings"
)

// HTTP/2 error codes (RFC 9113 section 7) that a new attempt can get
// past.
const (
	h2Internal        = 0x2 // INTERNAL_ERROR: the server failed on this stream
	h2StreamClosed    = 0x5 // STREAM_CLOSED
	h2RefusedStream   = 0x7 // REFUSED_STREAM: not processed at all
	h2Cancel          = 0x8 // CANCEL: the server (or a proxy) gave up on it
	h2EnhanceYourCalm = 0xb // ENHANCE_YOUR_CALM: slow down, then retry
)

// h2StreamError has the shape of net/http's HTTP/2 stream error (and of
// golang.org/x/net/http2.StreamError). net/http's unexported type has an
// As method, documented in net/http/h2_error.go, that converts it into any
// struct with these field names and convertible types, so errors.As can
// read the stream's error code without a dependency on x/net.
type h2StreamError struct {
	StreamID uint32
	Code     uint32
	Cause    error
}

func (e h2StreamError) Error() string {
	return "http2 stream " + strconv.FormatUint(uint64(e.StreamID), 10) +
		" reset with code " + strconv.FormatUint(uint64(e.Code), 10)
}

// h2Reset reports whether err is an HTTP/2 stream reset (RST_STREAM) with
// a code that a new attempt may not meet. Requests reset with
// REFUSED_STREAM are retried by net/http itself first.
func h2Reset(err error) bool {
	var se h2StreamError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case h2Internal, h2StreamClosed, h2RefusedStream, h2Cancel, h2EnhanceYourCalm:
		return true
	}
	return false
}

// cutHead reports whether err says the response head was malformed in the
// way a connection cut inside it makes it: depending on the byte where the
// cut fell, the partial line reads as a malformed status line or status
// code (untyped errors, read by netHTTPText) or header line (a
// textproto.ProtocolError), or the read ends with io.ErrUnexpectedEOF
// (tested elsewhere). A status line that is not HTTP at all, or a
// malformed version, is not a cut and is not retried.
func cutHead(err error) bool {
	var pe textproto.ProtocolError
	return errors.As(err, &pe) || inTree(err, func(e error) bool { return netHTTPText(e.Error()) == textCutHead })
}

// dialFailed reports whether err is a failure to connect that a new
// attempt may not meet: an *net.OpError of the "dial" operation, except a
// malformed address or unknown network (a mistake, not a failure). Name
// resolution errors are decided by the caller, before this.
func dialFailed(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	var addrErr *net.AddrError
	var netErr net.UnknownNetworkError
	var parseErr *net.ParseError
	return !errors.As(err, &addrErr) && !errors.As(err, &netErr) && !errors.As(err, &parseErr)
}

// callerTimedOut reports whether err is http.Client.Timeout expiring: the
// caller's own deadline, like a context deadline. http.Client reports it
// as an error that has only text (and matches context.DeadlineExceeded,
// like the timeouts of a single attempt do).
func callerTimedOut(err error) bool {
	return inTree(err, func(e error) bool { return netHTTPText(e.Error()) == textClientTimeout })
}

// Kinds of net/http error text, see netHTTPText.
const (
	textOther         = iota
	textCutHead       // a connection cut inside the response head
	textGoAway        // an HTTP/2 GOAWAY, then the connection closed
	textClientTimeout // http.Client.Timeout expired
	textConnLost      // an HTTP/2 connection stopped answering pings
)

// netHTTPText classifies the text of an error that net/http creates with
// errors.New or fmt.Errorf, or as an unexported type without a method to
// test: the text is the only handle there is. It is the one place where
// this package reads error text, and each case has its own test
// (TestNetHTTPText) that runs net/http into it, so a change of wording in
// a Go release fails a test rather than a retry.
func netHTTPText(msg string) int {
	switch {
	case strings.HasPrefix(msg, "malformed HTTP response "):
		// net/http's ReadResponse, badStringError: a status line without a
		// space. A cut leaves the start of one ("HTT", "HTTP/1.1"); an
		// answer that is not HTTP (a TLS alert, an SSH banner) is not a cut.
		line, err := strconv.Unquote(strings.TrimPrefix(msg, "malformed HTTP response "))
		if err == nil && (strings.HasPrefix(line, "HTTP/") || strings.HasPrefix("HTTP/", line)) {
			return textCutHead
		}
	case strings.HasPrefix(msg, "malformed HTTP status code "):
		// The same, cut inside the status code: fewer than 3 digits.
		code, err := strconv.Unquote(strings.TrimPrefix(msg, "malformed HTTP status code "))
		if err == nil && len(code) < 3 && strings.Trim(code, "0123456789") == "" {
			return textCutHead
		}
	case strings.HasPrefix(msg, "http2: server sent GOAWAY and closed the connection"):
		return textGoAway // net/http's http2GoAwayError (also x/net/http2.GoAwayError)
	case msg == "http2: client connection lost":
		return textConnLost // net/http's HTTP/2 health check (HTTP2Config.SendPingTimeout)
	case strings.HasSuffix(msg, "(Client.Timeout exceeded while awaiting headers)"),
		strings.HasSuffix(msg, "(Client.Timeout or context cancellation while reading body)"):
		return textClientTimeout // net/http's Client, timeoutError
	}
	return textOther
}

// h2ConnGone reports whether err is the loss of an HTTP/2 connection
// before the response head came: a GOAWAY followed by the close of the
// connection, or a connection that stopped answering pings.
func h2ConnGone(err error) bool {
	return inTree(err, func(e error) bool {
		k := netHTTPText(e.Error())
		return k == textGoAway || k == textConnLost
	})
}
