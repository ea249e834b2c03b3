// Package neuracrafttest provides an in-memory fake of the NeuraCraft API for
// tests, in the manner of net/http/httptest. [NewServer] starts it on a
// loopback address, [NewTLSServer] over HTTPS with HTTP/2 (use
// [Server.Client] to reach it). It serves the documented endpoints under
// /v1 and the OAuth 2.0 token endpoint (client-credentials grant, at
// [Server.TokenURL]), checks API keys and OAuth tokens (with their expiry)
// and their scopes, records every request it receives,
// and can be told with [Server.Fail] to answer the next requests with a
// [Fault]: a rate limit, a plugin error, a gateway's HTML page, a truncated
// body, a reset connection, a slow body or a stall. Its pipeline runs
// follow a [RunScript] given with [Server.ScriptRuns]: queued or running
// for a number of polls, then completed, failed or canceled.
//
// A test starts a server, points its client at [Server.URL] with
// [Server.APIKey], and closes the server when done:
//
//	srv := neuracrafttest.NewServer()
//	defer srv.Close()
//	srv.Fail("GET /pipelines/{id}", 1, neuracrafttest.RateLimit("1"))
//	req, _ := http.NewRequest("GET", srv.URL+"/pipelines/pipe_1", nil)
//	req.Header.Set("X-API-Key", srv.APIKey)
//	resp, err := http.DefaultClient.Do(req) // 429 Too Many Requests, Retry-After: 1
package neuracrafttest
