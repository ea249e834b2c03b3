// Tests of the hiding of credentials from errors and logs (hide.go):
// echoed by a server in every part of an answer, through a Client and
// through a bare Transport, in a cause, in a run, and fuzzed.

package neuracraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// credentialOf is the credential r carries: its X-API-Key, else its
// bearer token.
func credentialOf(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// echoError answers 401 with the request's credential in the message,
// the reason, the details (a value, a key, an array), a response header,
// a Bearer challenge and the body.
func echoError(w http.ResponseWriter, r *http.Request) {
	cred := credentialOf(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo", "you sent "+cred)
	w.Header().Set("X-Request-ID", "req_"+cred)
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+cred+` expired"`)
	w.WriteHeader(http.StatusUnauthorized)
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code":    "key_" + cred,
		"message": "Invalid API key " + cred,
		"details": map[string]any{"key": cred, cred: 1, "all": []string{cred}},
	}})
	_, _ = w.Write(body)
}

// requireHidden fails if secret shows in err's line, in any of its slog
// values, in %+v, or in the fields of an *APIError or *RunError in it.
func requireHidden(t *testing.T, err error, secret string) {
	t.Helper()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret, "Error()")
	assert.NotContains(t, fmt.Sprintf("%+v", err), secret, "%%+v")
	_, line := logJSON(t, LogValue(err))
	assert.NotContains(t, line, secret, "LogValue")
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		_, line = logJSON(t, apiErr)
		assert.NotContains(t, line, secret, "slog of the APIError")
		for k, vs := range apiErr.Header {
			assert.NotContains(t, k, secret, "a header name")
			for _, v := range vs {
				assert.NotContains(t, v, secret, "header %s", k)
			}
		}
		assert.NotContains(t, string(apiErr.Body), secret, "Body")
		assert.NotContains(t, string(apiErr.Details), secret, "Details")
		assert.NotContains(t, jsonUnescape(apiErr.Body), secret, "Body, unescaped")
	}
	var runErr *RunError
	if errors.As(err, &runErr) {
		_, line = logJSON(t, runErr)
		assert.NotContains(t, line, secret, "slog of the RunError")
		assert.NotContains(t, strings.Join(runErr.Stack, " "), secret, "Stack")
	}
}

// TestClientHidesEchoedCredentials: a server that echoes the Client's API
// key or token everywhere it can does not get it into the error: the
// message, reason and request ID read [REDACTED], the details, headers
// and body are kept without it.
func TestClientHidesEchoedCredentials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(echoError))
	defer srv.Close()
	for _, tc := range []struct {
		name, secret string
		c            *Client
	}{
		{"API key", echoKey, &Client{BaseURL: srv.URL + "/v1", APIKey: echoKey}},
		{"token", echoToken, &Client{BaseURL: srv.URL + "/v1", Token: echoToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Do(t.Context(), "GET", "/pipelines", nil, nil)
			requireHidden(t, err, tc.secret)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "Invalid API key [REDACTED]", apiErr.Message)
			assert.Equal(t, "key_[REDACTED]", apiErr.Reason)
			assert.Equal(t, "req_[REDACTED]", apiErr.RequestID)
			assert.Equal(t, "you sent [REDACTED]", apiErr.Header.Get("X-Echo"))
			assert.JSONEq(t, `{"key":"[REDACTED]","[REDACTED]":1,"all":["[REDACTED]"]}`, string(apiErr.Details))
			assert.Contains(t, string(apiErr.Body), `"message":"Invalid API key [REDACTED]"`)
			assert.ErrorIs(t, err, ErrUnauthorized)
		})
	}
}

// TestTransportHidesTheRequestsCredentials: the rule is the Transport's,
// so a caller of WrapClient who sets the headers is covered too; and
// FromResponse applies it to a plain client's response.
func TestTransportHidesTheRequestsCredentials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(echoError))
	defer srv.Close()
	through := map[string]func(*http.Request) error{
		"Transport": func(req *http.Request) error {
			_, err := WrapClient(nil).Do(req)
			return err
		},
		"FromResponse": func(req *http.Request) error {
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			return FromResponse(resp)
		},
	}
	for name, do := range through {
		for _, h := range [][2]string{{"X-API-Key", echoKey}, {"Authorization", "Bearer " + echoToken}} {
			req, err := http.NewRequest("GET", srv.URL+"/v1/pipelines", nil)
			require.NoError(t, err)
			req.Header.Set(h[0], h[1])
			err = do(req)
			requireHidden(t, err, strings.TrimPrefix(h[1], "Bearer "))
			assert.ErrorIs(t, err, ErrUnauthorized, "%s, %s", name, h[0])
		}
	}
}

// TestHiddenCredentialsEscapedInJSON: a key spelled with JSON escapes in
// the body is found too: Details is encoded again without it, and the
// raw Body, which would still spell it, is dropped.
func TestHiddenCredentialsEscapedInJSON(t *testing.T) {
	t.Parallel()
	escaped := `\u006e\u0063` + echoKey[2:] // "nc..." spelled with escapes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"bad `+escaped+`","details":{"k":"`+escaped+`","n":12345678901234567890}}}`)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, APIKey: echoKey}
	_, err := c.Do(t.Context(), "GET", "/x", nil, nil)
	requireHidden(t, err, echoKey)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Nil(t, apiErr.Body, "a body spelling the key with escapes is dropped")
	assert.JSONEq(t, `{"k":"[REDACTED]","n":12345678901234567890}`, string(apiErr.Details), "numbers kept as sent")
	assert.Equal(t, "bad [REDACTED]", apiErr.Message)
}

// TestHiddenCredentialsInACause: a cause whose text holds the key (a
// Base of the caller's that quotes the header) is wrapped with its text
// hidden, and errors.Is still finds it.
func TestHiddenCredentialsInACause(t *testing.T) {
	t.Parallel()
	errProxy := errors.New("proxy refused")
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("%w: bad key %s\n", errProxy, req.Header.Get("X-API-Key"))
	})
	c := &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: echoKey,
		HTTPClient: &http.Client{Transport: &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}}}
	_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	requireHidden(t, err, echoKey)
	assert.ErrorIs(t, err, errProxy)
	var reqErr *RequestError
	require.ErrorAs(t, err, &reqErr)
	assert.Equal(t, "neuracraft: GET /v1/pipelines: proxy refused: bad key [REDACTED] (request "+reqErr.RequestID+", attempt 1)",
		err.Error())
}

// TestWaitRunHidesCredentials: a failed run whose error repeats the key
// (message, reason, plugin, stack) returns a RunError without it.
func TestWaitRunHidesCredentials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred := credentialOf(r)
		w.Header().Set("Content-Type", "application/json")
		doc, _ := json.Marshal(map[string]any{"id": "run_1", "status": "failed", "error": map[string]any{
			"code": "KEY_" + cred, "message": "rejected " + cred, "plugin_id": "p-" + cred, "stack": []string{"at " + cred}}})
		_, _ = w.Write(doc)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, APIKey: echoKey}
	run, err := c.WaitRun(t.Context(), "run_1")
	requireHidden(t, err, echoKey)
	require.ErrorIs(t, err, ErrRunFailed)
	assert.Equal(t, "rejected [REDACTED]", run.Error.Message)
	assert.Equal(t, []string{"at [REDACTED]"}, run.Error.Stack)
	got, err := c.GetRun(t.Context(), "run_1")
	require.NoError(t, err)
	requireHidden(t, got.Error, echoKey)
}

// TestCutSecretsHidden: a server text that puts the key across a field's
// cap (Message, 300 characters) keeps no start of it, whichever part the
// cap cuts: not in an *APIError the Transport decodes, nor in a failed
// run's *RunError, whose text is cut before the Client hides its key.
func TestCutSecretsHidden(t *testing.T) {
	t.Parallel()
	var cut int // characters of the key before the cap, per request
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		msg := strings.Repeat("a", maxMessage-1-cut) + credentialOf(r) // the cap keeps its first cut characters
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/runs/") {
			doc, _ := json.Marshal(map[string]any{"id": "run_1", "status": "failed", "error": map[string]any{"message": msg}})
			_, _ = w.Write(doc)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		doc, _ := json.Marshal(map[string]any{"error": map[string]any{"code": "unauthorized", "message": msg}})
		_, _ = w.Write(doc)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, APIKey: echoKey}
	for n := 1; n < len(echoKey)-1; n++ { // the text is longer than the cap: cut
		mu.Lock()
		cut = n
		mu.Unlock()
		_, err := c.Do(t.Context(), http.MethodGet, "/pipelines", nil, nil)
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		_, runErr := c.WaitRun(t.Context(), "run_1")
		var rErr *RunError
		require.ErrorAs(t, runErr, &rErr)
		for _, text := range []string{err.Error(), apiErr.Message, runErr.Error(), rErr.Message} {
			assert.NotContains(t, text, echoKey[:minCutSecret], "%d characters of the key before the cap", n)
		}
		end := "a…" // the start of the key cut off with the rest
		if n < minCutSecret {
			end = echoKey[:n] + "…" // fewer characters than minCutSecret: the key's public prefix
		}
		assert.True(t, strings.HasSuffix(apiErr.Message, end), "cut, and says so: %q", apiErr.Message)
		assert.True(t, strings.HasSuffix(rErr.Message, end), "cut, and says so: %q", rErr.Message)
	}
}

// TestTransportHidesCredentialsAddedBelow: a token that a RoundTripper
// below the Transport adds to its copy of the request (an OAuth 2.0
// transport inside WrapClient, as docs/retries.md advises) is hidden from
// the error the Transport makes of the answer, as one the request carried
// is: the Base's answer names the request it sent (resp.Request).
func TestTransportHidesCredentialsAddedBelow(t *testing.T) {
	t.Parallel()
	const token = "nc_oauth_added_below_0123456789"
	srv := httptest.NewServer(http.HandlerFunc(echoError))
	defer srv.Close()
	oauthLike := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent := req.Clone(req.Context())
		sent.Header.Set("Authorization", "Bearer "+token)
		return http.DefaultTransport.RoundTrip(sent)
	})
	_, err := WrapClient(&http.Client{Transport: oauthLike}).Get(srv.URL + "/v1/pipelines")
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	requireHidden(t, apiErr, token)
	_, line := logJSON(t, LogValue(err))
	assert.NotContains(t, line, token, "LogValue")
	assert.Equal(t, "Invalid API key [REDACTED]", apiErr.Message)
	assert.NotContains(t, string(apiErr.Body), token, "Body")
	assert.NotContains(t, fmt.Sprint(apiErr.Header), token, "Header")
}

// TestClientErrorResponseAsResponse: when the Client's HTTPClient hands a
// 4xx back as a response (a Transport that returns error responses
// instead of errors), Do decodes it into the same *APIError, without the
// credentials.
func TestClientErrorResponseAsResponse(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	c := &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: echoKey}
	c.once.Do(func() {
		c.hc = &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			echoError(rec, req)
			resp := rec.Result()
			resp.Request = req
			return resp, nil
		})}
	})
	_, err := c.Do(context.Background(), "GET", "/pipelines", nil, nil)
	requireHidden(t, err, echoKey)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 401, apiErr.StatusCode)
	assert.Equal(t, "Invalid API key [REDACTED]", apiErr.Message)
	assert.Equal(t, "GET", apiErr.Method)
	assert.Equal(t, "https://api.neuracraft.com/v1/pipelines", apiErr.URL)
}

// TestCredentialsIn: what counts as a credential of a request.
func TestCredentialsIn(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("X-API-Key", " nc_key ")
	h["authorization"] = []string{"Bearer tok_1", "Basic dXNlcjpwYXNzd29yZA==", "bare"} // not canonical: found all the same
	h.Set("X-Other", "not a credential")
	assert.ElementsMatch(t, []string{"nc_key", "tok_1", "dXNlcjpwYXNzd29yZA==", "bare"}, credentialsIn(h))
	assert.Empty(t, credentialsIn(http.Header{"Authorization": {"  "}}))
}

// TestCredentialsInURL: the secrets of a URL that errors are hidden
// from: a password, the values redactURL redacts, from minURLSecret
// characters on; nothing from a URL without them.
func TestCredentialsInURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{"https://api.example/v1/p?api_key=k_secret&limit=5", []string{"k_secret"}},
		{"https://u:p4ssw0rd!@api.example/v1/p", []string{"p4ssw0rd!", "p4ssw0rd%21"}}, // as it reads, and as net/url spells it
		{"https://u:p%40ss%2Fword-123@api.example/v1/p", []string{"p@ss/word-123", "p%40ss%2Fword-123"}},
		{"https://api.example/v1/p?api_key=nc%2Blive%2F0123456789", []string{"nc+live/0123456789", "nc%2Blive%2F0123456789"}},
		{"https://api.example/v1/p?api%5Fkey=nc_live_0123456789", []string{"nc_live_0123456789"}}, // an escaped name
		{"https://u:short@api.example/v1/p", nil},
		{"https://api.example/v1/p?state=1234567&code=12345678", []string{"12345678"}}, // 7 is too short, 8 is not
		{"https://api.example/v1/p?next=eyJhbGciOi.eyJzdWIi.c2ln", []string{"eyJhbGciOi.eyJzdWIi.c2ln"}},
		{"https://api.example/v1/p?limit=123456789&cursor=abcdefghij", nil},
		{"https://api.example/v1/p?token=%zz&access_token=tok_abcdefgh", []string{"tok_abcdefgh"}}, // what parses
		{"https://api.example/v1/p?token=tok_abcdefgh&token=tok_abcdefgh", []string{"tok_abcdefgh"}},
		{"https://api.example/v1/p", nil},
	} {
		u, err := url.Parse(tc.url)
		require.NoError(t, err)
		assert.ElementsMatch(t, tc.want, credentialsInURL(u), "%s", tc.url)
	}
	assert.Empty(t, credentialsInURL(nil))
}

// TestEscapedURLSecretsHidden: a server that echoes the request line
// sends a secret of the URL back as the URL spells it, percent-escaped
// ("nc%2Blive%2F..."): it is hidden in that spelling too, in the error's
// text, its log value and its Body.
func TestEscapedURLSecretsHidden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, url, spelled string }{
		{"a query value", "https://api.neuracraft.com/v1/pipelines?api_key=nc%2Blive%2F0123456789abcdef", "nc%2Blive%2F0123456789abcdef"},
		{"a password", "https://u:p%40ss%2Fword-123@api.neuracraft.com/v1/pipelines", "p%40ss%2Fword-123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"error":{"code":"not_found","message":"No route for GET ` + tc.url + `"}}`
			resp := withRequest(t, newErrorResponse(404, body, "Content-Type", "application/json"), http.MethodGet, tc.url)
			e := mustAPIError(t, resp)
			requireHidden(t, e, tc.spelled)
			_, line := logJSON(t, LogValue(e))
			assert.NotContains(t, line, tc.spelled, "LogValue")
			assert.NotContains(t, string(e.Body), tc.spelled, "Body")
			assert.Contains(t, e.Message, "No route for GET")
		})
	}
}

// TestURLSecretsHidden: a server that echoes a secret of the request's
// URL (a query parameter's value) does not get it into the error, neither
// through the Transport nor through FromResponse on a plain client's
// response, in a JSON envelope or a text body; a short value is left in
// the text (only the URL redacts it).
func TestURLSecretsHidden(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("api_key")
		if r.URL.Query().Get("as") == "text" {
			http.Error(w, "bad key "+v+" for "+r.URL.Query().Get("state"), http.StatusForbidden)
			return
		}
		w.Header().Set("X-Echo", v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		body, _ := json.Marshal(map[string]any{"error": map[string]any{
			"code": "forbidden", "message": "bad key " + v, "details": map[string]any{"key": v}}})
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	const secret = "k_query_secret"
	for _, as := range []string{"json", "text"} {
		target := srv.URL + "/v1/pipelines?api_key=" + secret + "&state=ab&as=" + as
		t.Run("Transport/"+as, func(t *testing.T) {
			_, err := WrapClient(nil).Get(target)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			requireHidden(t, apiErr, secret) // the *url.Error around it is net/http's, with the URL as sent
			_, line := logJSON(t, LogValue(err))
			assert.NotContains(t, line, secret, "LogValue of the *url.Error")
			assert.Contains(t, apiErr.Message, "bad key [REDACTED]")
		})
		t.Run("FromResponse/"+as, func(t *testing.T) {
			resp, err := http.Get(target)
			require.NoError(t, err)
			err = FromResponse(resp)
			requireHidden(t, err, secret)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Contains(t, apiErr.Message, "bad key [REDACTED]")
			if as == "text" {
				assert.Contains(t, apiErr.Message, " for ab", "a 2-character value is not hidden")
			}
		})
	}
}

// TestJSONUnescape: the escapes JSON has, surrogate pairs included; what
// is not an escape is kept.
func TestJSONUnescape(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "a\"\\/\b\f\n\r\tb", jsonUnescape([]byte(`a\"\\\/\b\f\n\r\tb`)))
	assert.Equal(t, "nc_😀", jsonUnescape([]byte(`\u006e\u0063_\ud83d\ude00`)))
	assert.Equal(t, `\x \u12 \`, jsonUnescape([]byte(`\x \u12 \`)))
}

// FuzzErrorTexts: whatever a server answers (status, headers, body, a
// run document), whatever a Base fails with and whatever path a caller
// asks for, with the Client's key or token inside any of them ("$K" in an
// input stands for it), no error a Client returns and no log value of it
// shows the key, no line is longer than its cap, and no control or
// bidirectional character survives. Every error type is reached:
// *APIError, *RequestError, *CooldownError, *RunError, a success that
// could not be decoded, a wait abandoned, and a path refused.
func FuzzErrorTexts(f *testing.F) {
	f.Add("ABCdef0123", false, 401, "/pipelines/p1", "you sent $K\r\n", []byte(`{"error":{"code":"bad_$K","message":"Invalid API key $K","details":{"$K":["$K"]}}}`),
		"dial tcp: lookup $K\n", []byte(`{"id":"run_$K","status":"failed","error":{"code":"$K","message":"m $K","plugin_id":"$K","stack":"a\n$K"}}`))
	f.Add("tok_987654", true, 503, "/../$K", "Bearer error=\"invalid_token\", error_description=\"$K\u202e\"", []byte("<html>$K</html>"),
		strings.Repeat("é", 2000)+"$K", []byte(`{"id":"r","status":"running"}`))
	f.Add("x", false, 429, "/pipelines?api_key=$K", "$K", []byte(`{"error":{"message":"\u006e\u0063_live_x"}}`), "", []byte(`{"id":"r","status":"cancelled"}`))
	f.Add("0000000000", true, 500, "/p/%zz$K", strings.Repeat("h", 300), []byte(strings.Repeat("$K ", 30000)), "\x1b[31m$K", []byte(`null`))
	f.Add("long", false, 404, "/%zz"+strings.Repeat("p", 3000), "", []byte(""), "", []byte(""))
	f.Add("port", false, 404, "//h:"+strings.Repeat("9$K", 500)+"/x", "", []byte(""), "", []byte(""))
	f.Add("dots", false, 404, "/"+strings.Repeat("a", 2000)+"/../../$K", "", []byte(""), "", []byte(""))

	f.Fuzz(func(t *testing.T, suffix string, useToken bool, status int, path, header string, body []byte, cause string, runDoc []byte) {
		key := "nc_live_" + strings.Map(func(r rune) rune {
			if r > ' ' && r < 0x7f {
				return r
			}
			return -1
		}, suffix)
		expand := func(s string) string { return strings.ReplaceAll(s, "$K", key) }
		path, header, cause = expand(path), expand(header), expand(cause)
		body, runDoc = []byte(expand(string(body))), []byte(expand(string(runDoc)))
		status = 400 + (max(status, -status)%200+200)%200 // 400-599

		// client returns a Client over a Transport whose Base answers with
		// answer, not retrying.
		client := func(answer func(req *http.Request) (*http.Response, error)) *Client {
			c := &Client{BaseURL: "https://api.neuracraft.com/v1",
				HTTPClient: &http.Client{Transport: &Transport{Base: roundTripFunc(answer), Retry: RetryPolicy{MaxAttempts: 1}}}}
			if useToken {
				c.Token = key
			} else {
				c.APIKey = key
			}
			return c
		}
		respond := func(req *http.Request, status int, h http.Header, body []byte) *http.Response {
			return &http.Response{StatusCode: status, Header: h, Request: req,
				Body: io.NopCloser(strings.NewReader(string(body))), ContentLength: -1}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var errs []error

		// An answer of 400 or more, echoing the header everywhere.
		c := client(func(req *http.Request) (*http.Response, error) {
			h := http.Header{"X-Request-Id": {header}, "Www-Authenticate": {header}, "X-Echo": {header},
				"Content-Type": {"application/json"}}
			return respond(req, status, h, body), nil
		})
		_, err := c.Do(ctx, "GET", path, nil, nil)
		errs = append(errs, err)

		// No answer: a *url.Error (a Base on an http.Client) that quotes
		// the key in its URL and its cause.
		c = client(func(req *http.Request) (*http.Response, error) {
			return nil, &url.Error{Op: "Get", URL: "https://api.neuracraft.com/v1?api_key=" + key + "&q=" + cause, Err: errors.New(cause)}
		})
		_, err = c.Do(ctx, "GET", path, nil, nil)
		errs = append(errs, err)

		// A 201 whose Location and body cannot be used.
		c = client(func(req *http.Request) (*http.Response, error) {
			return respond(req, http.StatusCreated, http.Header{"Location": {header}, "X-Request-Id": {header}}, body), nil
		})
		var out map[string]any
		_, err = c.Do(ctx, "POST", path, map[string]string{"k": key}, &out)
		errs = append(errs, err)

		// A run: failed, canceled, or not ended when the next poll would
		// come after the deadline.
		c = client(func(req *http.Request) (*http.Response, error) {
			return respond(req, http.StatusOK, http.Header{"Retry-After": {"3600"}, "X-Request-Id": {header}}, runDoc), nil
		})
		run, err := c.WaitRun(ctx, "run_"+key)
		errs = append(errs, err)
		if run != nil && run.Error != nil {
			errs = append(errs, run.Error)
		}

		// Held back by a cooldown that ends after the deadline.
		sent := 0
		c = client(func(req *http.Request) (*http.Response, error) {
			sent++
			return respond(req, http.StatusTooManyRequests, http.Header{"Retry-After": {"59"}, "X-Request-Id": {header}}, body), nil
		})
		_, err = c.Do(ctx, "GET", path, nil, nil)
		errs = append(errs, err)
		if sent == 1 {
			short, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err = c.Do(short, "GET", path, nil, nil)
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			errs = append(errs, err)
		}

		for _, err := range errs {
			if err != nil {
				checkErrorText(t, err, key)
			}
		}
	})
}

// checkErrorText fails if err's line or any of its log values shows key
// (when not ""), is longer than its cap, or holds a control or
// bidirectional character; and, for an *APIError or *RunError in it, if a
// field, header, body or stack shows key.
func checkErrorText(t *testing.T, err error, key string) {
	t.Helper()
	bad := func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }
	line := err.Error()
	require.LessOrEqual(t, utf8.RuneCountInString(line), maxLogText, "Error() of %T: %q", err, line)
	require.False(t, strings.ContainsFunc(line, bad), "Error() of %T: %q", err, line)
	require.False(t, key != "" && strings.Contains(line, key), "Error() of %T shows the key: %q", err, line)
	caps := map[string]int{"message": maxMessage, "reason": maxReason, "request_id": maxHeaderValue,
		"run_id": maxRunID, "plugin_id": maxRunID}
	var walk func(name string, v slog.Value)
	walk = func(name string, v slog.Value) {
		v = v.Resolve()
		if v.Kind() == slog.KindGroup {
			for _, a := range v.Group() {
				walk(a.Key, a.Value)
			}
			return
		}
		s, limit := v.String(), maxLogText
		if c, ok := caps[name]; ok {
			limit = c
		}
		require.LessOrEqual(t, utf8.RuneCountInString(s), limit, "logged %s of %T: %q", name, err, s)
		require.False(t, strings.ContainsFunc(s, bad), "logged %s of %T: %q", name, err, s)
		require.False(t, key != "" && strings.Contains(s, key), "logged %s of %T shows the key: %q", name, err, s)
	}
	walk("err", LogValue(err))
	if key == "" {
		return
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		walk("err", apiErr.LogValue())
		for k, vs := range apiErr.Header {
			require.NotContains(t, k, key)
			for _, v := range vs {
				require.NotContains(t, v, key, "header %s", k)
			}
		}
		require.NotContains(t, string(apiErr.Body), key, "Body")
		require.NotContains(t, jsonUnescape(apiErr.Body), key, "Body, unescaped")
		require.NotContains(t, string(apiErr.Details), key, "Details")
		require.NotContains(t, jsonUnescape(apiErr.Details), key, "Details, unescaped")
	}
	var runErr *RunError
	if errors.As(err, &runErr) {
		walk("err", runErr.LogValue())
		for _, l := range runErr.Stack {
			require.NotContains(t, l, key, "Stack")
			require.LessOrEqual(t, utf8.RuneCountInString(l), maxMessage, "Stack entry %q", l)
		}
	}
}
