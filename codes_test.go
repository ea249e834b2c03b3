// Tests for Code: the reference table, names of other statuses, the
// mapping to sentinels, and docs/errors.md's copy of the table.

package neuracraft

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// referenceText is the response-code reference (docs: response-codes.md),
// typed out again here so that a change to the table in codes.go shows up
// as a difference instead of being compared with itself.
var referenceText = []struct {
	code                          Code
	name, description, resolution string
}{
	{200, "OK", "Successful request. Response body contains requested data.", "None needed."},
	{201, "Created", "New resource successfully created (e.g., pipeline configuration).", "Check Location header for new resource URL."},
	{202, "Accepted", "Request accepted for asynchronous processing.", "Use provided task_id to monitor operation status."},
	{400, "Bad Request", "Invalid request syntax or parameters.", "Validate request format and parameters against API documentation."},
	{401, "Unauthorized", "Missing or invalid authentication credentials.", "Verify API key/credentials in Authorization header."},
	{403, "Forbidden", "Authenticated user lacks permission for resource.", "Check your role/permissions or contact your workspace admin."},
	{404, "Not Found", "Resource doesn't exist at specified path.", "Verify resource ID and URL path."},
	{429, "Too Many Requests", "Rate limit exceeded.", "Wait before retrying. Check Retry-After header if provided."},
	{500, "Internal Server Error", "Unexpected server-side error.", "Retry request. If persistent, report with X-Request-ID header value."},
	{503, "Service Unavailable", "Temporary system maintenance or overload.", "Retry after waiting. Check status.neuracraft.com for outages."},
}

func TestCodeReference(t *testing.T) {
	t.Parallel()
	var order []Code
	for _, r := range referenceText {
		order = append(order, r.code)
		t.Run(strconv.Itoa(int(r.code)), func(t *testing.T) {
			got := []string{r.code.String(), r.code.Error(), r.code.Name(), r.code.Description(), r.code.Resolution()}
			want := []string{strconv.Itoa(int(r.code)) + " " + r.name, strconv.Itoa(int(r.code)) + " " + r.name,
				r.name, r.description, r.resolution}
			assert.Empty(t, cmp.Diff(want, got), "String, Error, Name, Description, Resolution (-want +got)")
			assert.False(t, r.code.IsPlugin(), "%d.IsPlugin() = true", int(r.code))
		})
	}
	assert.Empty(t, cmp.Diff(order, referenceOrder), "referenceOrder (-reference +referenceOrder)")
	assert.Equal(t, len(referenceText), len(reference), "reference has %d codes, the reference document %d", len(reference), len(referenceText))
}

func TestCodeOtherStatuses(t *testing.T) {
	t.Parallel()
	for _, c := range []Code{402, 409, 422, 502, 504} {
		t.Run(strconv.Itoa(int(c)), func(t *testing.T) {
			name := http.StatusText(int(c))
			assert.Equal(t, strconv.Itoa(int(c))+" "+name, c.String(), "String()")
			assert.Equal(t, name, c.Name(), "Name()")
			require.NotEmpty(t, c.Description(), "Description() = %q, Resolution() = %q; want both set", c.Description(), c.Resolution())
			assert.NotEmpty(t, c.Resolution(), "Description() = %q, Resolution() = %q; want both set", c.Description(), c.Resolution())
		})
	}
	// A server error can pass; a client error needs a changed request.
	got := Code(http.StatusBadGateway).Resolution()
	assert.True(t, strings.Contains(got, "Retry"), "502 Resolution() = %q, want advice to retry", got)
	got = Code(409).Resolution()
	assert.False(t, strings.Contains(got, "Retry"), "409 Resolution() = %q, want no advice to retry", got)
}

func TestCodeBareNumbers(t *testing.T) {
	t.Parallel()
	for _, c := range []Code{-1, 0, 1, 99, 600, 999, 1000, 7999, 9000, 10000} {
		t.Run(strconv.Itoa(int(c)), func(t *testing.T) {
			assert.Equal(t, strconv.Itoa(int(c)), c.String(), "String()")
			require.Empty(t, c.Name(), "Name, Description, Resolution = %q, %q, %q; want all empty", c.Name(), c.Description(), c.Resolution())
			require.Empty(t, c.Description(), "Name, Description, Resolution = %q, %q, %q; want all empty", c.Name(), c.Description(), c.Resolution())
			assert.Empty(t, c.Resolution(), "Name, Description, Resolution = %q, %q, %q; want all empty", c.Name(), c.Description(), c.Resolution())
		})
	}
}

func TestCodeUnregisteredPlugin(t *testing.T) {
	t.Parallel()
	c := Code(8998) // never registered by any test
	assert.Equal(t, "8998 Plugin Error", c.String(), "String()")
	assert.Contains(t, c.Resolution(), "plugin-specific documentation", "the reference's plugin advice")
	assert.Contains(t, c.Resolution(), "X-Request-ID", "the reference's plugin advice")
	assert.NotEmpty(t, c.Description(), "Description() is empty")
}

func TestCodeIsPluginBoundaries(t *testing.T) {
	t.Parallel()
	for c, want := range map[Code]bool{
		0: false, 404: false, 7999: false, 8000: true, 8001: true, 8102: true, 8998: true, 8999: true, 9000: false, -8000: false,
	} {
		assert.Equal(t, want, c.IsPlugin(), "Code(%d).IsPlugin()", int(c))
	}
}

func TestCodeIsSentinel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code Code
		want string // name of the one sentinel that matches, or ""
	}{
		{400, "ErrBadRequest"},
		{401, "ErrUnauthorized"},
		{403, "ErrForbidden"},
		{404, "ErrNotFound"},
		{429, "ErrRateLimited"},
		{500, "ErrInternal"},
		{503, "ErrUnavailable"},
		{8000, "ErrPlugin"},
		{8102, "ErrPlugin"},
		{8999, "ErrPlugin"},
		{200, ""}, {201, ""}, {202, ""}, {402, ""}, {409, ""}, {502, ""}, {504, ""},
		{7999, ""}, {9000, ""}, {0, ""},
	}
	for _, tt := range tests {
		for _, s := range sentinels {
			want := s.name == tt.want
			assert.Equal(t, want, errors.Is(tt.code, s.err), "errors.Is(Code(%d), %s)", int(tt.code), s.name)
			assert.Equal(t, want, tt.code.Is(s.err), "Code(%d).Is(%s)", int(tt.code), s.name)
		}
		assert.False(t, tt.code.Is(errors.New(tt.code.Error())), "Code(%d).Is(an unrelated error with the same text) = true", int(tt.code))
	}
}

func TestCodeAsErrorTarget(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("loading pipeline: %w", CodeNotFound)
	for _, tt := range []struct {
		target error
		want   bool
	}{
		{CodeNotFound, true},
		{Code(404), true},
		{ErrNotFound, true},
		{CodeForbidden, false},
		{ErrPlugin, false},
		{Code(8404), false},
	} {
		assert.Equal(t, tt.want, errors.Is(err, tt.target), "errors.Is(wrapped 404, %v)", tt.target)
	}
	var c Code
	require.True(t, errors.As(err, &c), "errors.As(wrapped 404, *Code) = %v, %d; want true, 404", errors.As(err, &c), int(c))
	assert.Equal(t, CodeNotFound, c, "errors.As(wrapped 404, *Code) = %v, %d; want true, 404", errors.As(err, &c), int(c))
	assert.Equal(t, "loading pipeline: 404 Not Found", err.Error(), "Error()")
}

// TestDocsCodeTable checks that docs/errors.md prints the reference table as
// the reference map holds it: the header, the separator, then one row per
// code of referenceOrder, `| code | Name | Description | Resolution |`.
func TestDocsCodeTable(t *testing.T) {
	t.Parallel()
	const (
		header    = "| Code | Name | Description | Resolution |"
		separator = "|---|---|---|---|"
	)
	const doc = "docs/errors.md"
	f, err := os.Open(doc)
	require.NoError(t, err, "%s must print the response-code table", doc)
	defer f.Close()

	var got [][]string
	var lines []string
	state := "before header"
	sc := bufio.NewScanner(f)
	for sc.Scan() && state != "done" {
		line := sc.Text()
		switch state {
		case "before header":
			if line == header {
				state = "separator"
			}
		case "separator":
			require.Equal(t, separator, line, "line after %q is %q", header, line)
			state = "rows"
		case "rows":
			if strings.TrimSpace(line) == "" {
				state = "done"
				break
			}
			line = strings.ReplaceAll(line, "`", "") // the Markdown's formatting; the API's texts are plain
			lines = append(lines, line)
			got = append(got, parseTableRow(line))
		}
	}
	require.NoError(t, sc.Err())
	require.NotEqual(t, "before header", state, "%s has no line %q", doc, header)

	var want [][]string
	for _, c := range referenceOrder {
		ci := reference[c]
		want = append(want, []string{strconv.Itoa(int(c)), ci.name, ci.description, ci.resolution})
	}
	assert.Empty(t, cmp.Diff(want, got), "%s code table cells (-reference +doc)", doc)
	for i, line := range lines {
		if i < len(want) {
			w := "| " + strings.Join(want[i], " | ") + " |"
			assert.Equal(t, w, line, "%s row %d", doc, i+1)
		}
	}
}

// parseTableRow splits a markdown table row "| a | b |" into its cells,
// trimmed.
func parseTableRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}
