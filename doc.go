// Package neuracraft turns NeuraCraft API failures into typed, actionable
// errors and retries the transient ones safely.
//
// Wrap the http.Client you already have with [WrapClient] (or put a
// [Transport] in it yourself). Every response with a status of 400 or more
// then comes out of client.Do as an [*APIError]: the HTTP status, the most
// specific NeuraCraft [Code] (a plugin's 8000-8999 code when the body names
// one), the message, the X-Request-ID to quote to support, and the
// Retry-After the server asked for. Test it like any Go error:
// errors.Is(err, neuracraft.ErrRateLimited), errors.Is(err,
// neuracraft.Code(8102)), errors.As(err, &apiErr), or with [IsRetryable]
// and [IsPlugin]. Without the transport, [FromResponse] decodes a response
// you already have.
//
// The Transport retries what is safe to retry: 429 and 503 for any request,
// 500, 502, 504 and network failures only for idempotent ones. It honours
// Retry-After up to a cap, never sleeps past the request's deadline, never
// buffers a request body, limits retries per host with a retry budget, and
// holds every request to a host that asked for a pause until the pause
// ends. [Client] is a small JSON client built on it; its
// [Client.WaitRun] waits for a pipeline run, whose failure is a
// [*RunError]. The package neuracrafttest is a fake NeuraCraft server for
// your tests.
package neuracraft
