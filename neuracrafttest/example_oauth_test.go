package neuracrafttest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// A TLS server speaks HTTP/2 to the client it returns, and issues OAuth
// 2.0 tokens for the client-credentials grant at TokenURL.
func ExampleNewTLSServer() {
	srv := neuracrafttest.NewTLSServer()
	defer srv.Close()
	client := neuracraft.WrapClient(srv.Client())

	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {srv.ClientID},
		"client_secret": {srv.ClientSecret},
		"scope":         {"pipeline:read"},
	}
	resp, err := client.Post(srv.TokenURL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		panic(err)
	}
	var token struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	err = json.NewDecoder(resp.Body).Decode(&token)
	resp.Body.Close()
	if err != nil {
		panic(err)
	}
	fmt.Println("token for", token.Scope, "valid", token.ExpiresIn, "s")

	req, _ := http.NewRequest("GET", srv.URL+"/pipelines", nil)
	req.Header.Set("Authorization", "Bearer "+token.AccessToken)
	resp, err = client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Proto)

	req, _ = http.NewRequest("POST", srv.URL+"/pipelines", strings.NewReader(`{"name":"etl"}`))
	req.Header.Set("Authorization", "Bearer "+token.AccessToken)
	_, err = client.Do(req)
	var apiErr *neuracraft.APIError
	if !errors.As(err, &apiErr) {
		panic(err)
	}
	fmt.Println(apiErr.StatusCode, apiErr.Reason)
	// Output:
	// token for pipeline:read valid 3600 s
	// 200 OK HTTP/2.0
	// 403 insufficient_scope
}
