// Command oauth shows neuracraft-go with OAuth 2.0 client credentials:
// golang.org/x/oauth2/clientcredentials fetches and refreshes the token,
// WrapClient turns NeuraCraft's failures into typed errors and retries the
// transient ones, over HTTPS and HTTP/2. It runs offline, against the fake
// NeuraCraft of neuracrafttest:
//
//	cd examples/oauth && go run .
//
// It is a module of its own, so that x/oauth2 is a dependency of this
// example only, never of the neuracraft package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "oauth:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	srv := neuracrafttest.NewTLSServer()
	defer srv.Close()
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: withoutTime}))

	// The fake's certificate is trusted only by srv.Client(): oauth2 uses
	// it for the token endpoint, and WrapClient below wraps it. In
	// production, leave this line out.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, srv.Client())

	cfg := clientcredentials.Config{
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		TokenURL:     srv.TokenURL, // https://api.neuracraft.com/oauth/token in production
		Scopes:       []string{"pipeline:read"},
	}
	client := newClient(ctx, cfg)

	// A read, which the token's scope allows, over HTTP/2.
	resp, err := send(ctx, client, "GET", srv.URL+"/pipelines", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "GET /pipelines: %s over %s\n", resp.Status, resp.Proto)

	// A stream reset before the answer: the GET is retried.
	srv.Fail("GET /pipelines", 1, neuracrafttest.ResetConnection())
	resp, err = send(ctx, client, "GET", srv.URL+"/pipelines", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "GET /pipelines after an HTTP/2 stream reset: %s, %d requests received\n",
		resp.Status, len(srv.RequestsFor("GET /pipelines")))

	// A write, which it does not: a typed 403.
	_, err = send(ctx, client, "POST", srv.URL+"/pipelines", `{"name":"nightly-etl"}`)
	var apiErr *neuracraft.APIError
	if !errors.Is(err, neuracraft.ErrForbidden) || !errors.As(err, &apiErr) {
		return fmt.Errorf("expected a 403, got %v", err)
	}
	fmt.Fprintf(w, "POST /pipelines: forbidden, reason %s\n", apiErr.Reason)
	logger.Error("create pipeline failed", "err", neuracraft.LogValue(err))

	// A wrong client secret: the token endpoint's RFC 6749 error, reached
	// through the wrapped client's error.
	bad := cfg
	bad.ClientSecret = "not-the-secret"
	_, err = send(ctx, neuracraft.WrapClient(bad.Client(ctx)), "GET", srv.URL+"/pipelines", "")
	var tokenErr *oauth2.RetrieveError
	if !errors.As(err, &tokenErr) {
		return fmt.Errorf("expected a token error, got %v", err)
	}
	fmt.Fprintf(w, "with a wrong secret: token endpoint says %s (retryable: %t)\n",
		tokenErr.ErrorCode, neuracraft.IsRetryable(err))
	return nil
}

// newClient is the client of this example: cfg.Client's transport adds
// the token, and WrapClient puts a neuracraft.Transport around it, so
// that every attempt carries a valid token.
//
// The token is added below the neuracraft.Transport, so its rule that a
// redirect to another origin goes without credentials cannot hold for
// it: oauth2's transport adds the token to every request it sends,
// redirected or not. NeuraCraft's API does not redirect to other
// origins, so the client does not follow such a redirect: it returns the
// redirect's answer instead, and the token stays at its origin.
func newClient(ctx context.Context, cfg clientcredentials.Config) *http.Client {
	client := neuracraft.WrapClient(cfg.Client(ctx))
	keep := client.CheckRedirect // WrapClient's: credentials stay at their origin
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(via[0].URL, req.URL) {
			return http.ErrUseLastResponse
		}
		return keep(req, via)
	}
	return client
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

// port is u's port, or its scheme's default one.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// send makes one call and reads the body of a success.
func send(ctx context.Context, client *http.Client, method, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp, err
}

// withoutTime drops slog's time attribute, so the output can be compared.
func withoutTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
