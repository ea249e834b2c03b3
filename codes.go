// This file holds Code, the NeuraCraft response-code table, and the
// sentinel errors that codes map to.

package neuracraft

import (
	"errors"
	"net/http"
	"strconv"
)

// Code is a NeuraCraft response code: an HTTP status (200-599) or a plugin
// code (8000-8999).
//
// A Code is a value, to switch on ([APIError.Code]); the sentinel errors
// ([ErrNotFound], [ErrPlugin], ...) are categories, for [errors.Is]. A
// Code is itself an error, so that a code without a sentinel can be
// tested with errors.Is too:
//
//	errors.Is(err, neuracraft.Code(409))  // status or body code is 409
//	errors.Is(err, neuracraft.Code(8102)) // the PDF Export plugin's code
//
// Code.Is maps codes to their categories, so
// errors.Is(neuracraft.Code(8102), neuracraft.ErrPlugin) is true.
type Code int

// The codes of NeuraCraft's response-code reference, as values (see
// [Code]). Each failure code's category is the sentinel named beside it.
const (
	CodeOK                  Code = 200 // Successful request.
	CodeCreated             Code = 201 // New resource created; see the Location header.
	CodeAccepted            Code = 202 // Accepted for asynchronous processing; see task_id.
	CodeBadRequest          Code = 400 // Invalid request syntax or parameters; category ErrBadRequest.
	CodeUnauthorized        Code = 401 // Missing or invalid credentials; category ErrUnauthorized.
	CodeForbidden           Code = 403 // Authenticated, but lacking permission; category ErrForbidden.
	CodeNotFound            Code = 404 // No resource at the path; category ErrNotFound.
	CodeTooManyRequests     Code = 429 // Rate limit exceeded; category ErrRateLimited.
	CodeInternalServerError Code = 500 // Unexpected server-side error; category ErrInternal.
	CodeServiceUnavailable  Code = 503 // Maintenance or overload; category ErrUnavailable.
)

// Plugin codes occupy 8000-8999: 8AAA, where AAA is the plugin-specific
// identifier.
const (
	minPluginCode Code = 8000
	maxPluginCode Code = 8999
)

// The sentinel errors below are categories of failure, for [errors.Is]
// (a code's value is a [Code]). An [*APIError] matches a sentinel when its
// body code or its HTTP status is in the category named beside it, so a
// plugin failure sent as HTTP 500 matches both ErrPlugin and ErrInternal.
var (
	ErrBadRequest   = errors.New("neuracraft: bad request")           // CodeBadRequest
	ErrUnauthorized = errors.New("neuracraft: unauthorized")          // CodeUnauthorized
	ErrForbidden    = errors.New("neuracraft: forbidden")             // CodeForbidden
	ErrNotFound     = errors.New("neuracraft: not found")             // CodeNotFound
	ErrRateLimited  = errors.New("neuracraft: rate limited")          // CodeTooManyRequests, and a *CooldownError
	ErrInternal     = errors.New("neuracraft: internal server error") // CodeInternalServerError
	ErrUnavailable  = errors.New("neuracraft: service unavailable")   // CodeServiceUnavailable
	ErrPlugin       = errors.New("neuracraft: plugin error")          // any plugin code, 8000-8999: Code.IsPlugin
)

// codeInfo is what the reference says about one code.
type codeInfo struct {
	name        string
	description string
	resolution  string
}

// reference is NeuraCraft's response-code reference
// (docs: response-codes.md), word for word but as plain text: the
// reference's Markdown code spans (Location in backticks) lose them, since
// these texts reach terminals and logs. docs/errors.md prints the same table
// with the formatting; TestDocsCodeTable keeps the two equal.
var reference = map[Code]codeInfo{
	CodeOK: {"OK",
		"Successful request. Response body contains requested data.",
		"None needed."},
	CodeCreated: {"Created",
		"New resource successfully created (e.g., pipeline configuration).",
		"Check Location header for new resource URL."},
	CodeAccepted: {"Accepted",
		"Request accepted for asynchronous processing.",
		"Use provided task_id to monitor operation status."},
	CodeBadRequest: {"Bad Request",
		"Invalid request syntax or parameters.",
		"Validate request format and parameters against API documentation."},
	CodeUnauthorized: {"Unauthorized",
		"Missing or invalid authentication credentials.",
		"Verify API key/credentials in Authorization header."},
	CodeForbidden: {"Forbidden",
		"Authenticated user lacks permission for resource.",
		"Check your role/permissions or contact your workspace admin."},
	CodeNotFound: {"Not Found",
		"Resource doesn't exist at specified path.",
		"Verify resource ID and URL path."},
	CodeTooManyRequests: {"Too Many Requests",
		"Rate limit exceeded.",
		"Wait before retrying. Check Retry-After header if provided."},
	CodeInternalServerError: {"Internal Server Error",
		"Unexpected server-side error.",
		"Retry request. If persistent, report with X-Request-ID header value."},
	CodeServiceUnavailable: {"Service Unavailable",
		"Temporary system maintenance or overload.",
		"Retry after waiting. Check status.neuracraft.com for outages."},
}

// referenceOrder lists the reference's codes in the order the reference
// (and docs/errors.md) gives them.
var referenceOrder = []Code{
	CodeOK, CodeCreated, CodeAccepted,
	CodeBadRequest, CodeUnauthorized, CodeForbidden, CodeNotFound, CodeTooManyRequests,
	CodeInternalServerError, CodeServiceUnavailable,
}

// pluginResolution is the reference's advice for plugin codes.
const pluginResolution = "Refer to your plugin-specific documentation for details. " +
	"Include X-Request-ID when reporting errors and verify plugin compatibility with your NeuraCraft version."

// info returns what is known about c: the reference's entry, a registered
// plugin's entry, or a generic one.
func (c Code) info() codeInfo {
	if ci, ok := reference[c]; ok {
		return ci
	}
	if c.IsPlugin() {
		if p, ok := lookupPluginCode(c); ok {
			return codeInfo{name: p.Name, description: p.Description, resolution: pluginResolution}
		}
		return codeInfo{name: "Plugin Error",
			description: "A plugin returned a custom error code.",
			resolution:  pluginResolution}
	}
	if text := http.StatusText(int(c)); text != "" {
		ci := codeInfo{name: text, description: "HTTP status " + text + "."}
		switch {
		case c >= 500:
			ci.resolution = "Retry after waiting. If persistent, report with X-Request-ID header value."
		case c >= 400:
			ci.resolution = "Check the request against the API documentation."
		default:
			ci.resolution = "None needed."
		}
		return ci
	}
	return codeInfo{}
}

// String returns the code and its name, like "404 Not Found" or
// "8102 PDF Export Failed". A registered plugin code is named by its
// registration, an unregistered one "Plugin Error"; a number that is
// neither an HTTP status nor a plugin code prints as the bare number.
func (c Code) String() string {
	name := c.info().name
	if name == "" {
		return strconv.Itoa(int(c))
	}
	return strconv.Itoa(int(c)) + " " + name
}

// Error returns the same text as String, so that a Code can be used as an
// error target with errors.Is.
func (c Code) Error() string { return c.String() }

// Name returns the code's short name ("Too Many Requests"), or "" for a
// number that is neither an HTTP status nor a plugin code.
func (c Code) Name() string { return c.info().name }

// Description says what the code means, in the reference's words where the
// reference lists the code.
func (c Code) Description() string { return c.info().description }

// Resolution says what to do about the code, in the reference's words
// where the reference lists the code ("Wait before retrying. Check
// Retry-After header if provided." for 429). It is plain text, without
// Markdown.
func (c Code) Resolution() string { return c.info().resolution }

// IsPlugin reports whether c is a plugin code (8000-8999). For an error,
// use [IsPlugin], which applies this test to the error's codes.
func (c Code) IsPlugin() bool { return c >= minPluginCode && c <= maxPluginCode }

// Is reports whether the sentinel target classifies c: ErrNotFound matches
// 404, ErrPlugin matches every plugin code, and so on. Two codes are
// compared by errors.Is itself.
func (c Code) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return c == CodeBadRequest
	case ErrUnauthorized:
		return c == CodeUnauthorized
	case ErrForbidden:
		return c == CodeForbidden
	case ErrNotFound:
		return c == CodeNotFound
	case ErrRateLimited:
		return c == CodeTooManyRequests
	case ErrInternal:
		return c == CodeInternalServerError
	case ErrUnavailable:
		return c == CodeServiceUnavailable
	case ErrPlugin:
		return c.IsPlugin()
	}
	return false
}
