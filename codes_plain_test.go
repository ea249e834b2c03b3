// Tests that the texts of Code are plain text: Markdown formatting belongs
// in the table of docs/errors.md only.

package neuracraft

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCodeTextsArePlain checks every code's Name, Description and
// Resolution (reference codes, other HTTP statuses, registered and
// unregistered plugin codes, numbers that are neither) for Markdown marks.
func TestCodeTextsArePlain(t *testing.T) {
	registerPluginCodesForTest(t, PluginCodeInfo{Code: 8950, Name: "Plain Test", Description: "A registered code."})
	var codes []Code
	for c := Code(0); c <= 1000; c++ {
		codes = append(codes, c)
	}
	for c := Code(7990); c <= 9010; c++ {
		codes = append(codes, c)
	}
	checked := 0
	for _, c := range codes {
		for what, text := range map[string]string{"Name": c.Name(), "Description": c.Description(), "Resolution": c.Resolution()} {
			if text != "" {
				checked++
			}
			for _, mark := range []string{"`", "**", "]("} {
				assert.NotContains(t, text, mark, "Code(%d).%s() carries Markdown", int(c), what)
			}
		}
	}
	// The reference's own texts are among those checked.
	assert.Greater(t, checked, 3*len(referenceOrder))
	assert.Equal(t, "Check Location header for new resource URL.", CodeCreated.Resolution())
	assert.True(t, strings.HasPrefix(Code(8950).Resolution(), "Refer to your plugin-specific documentation"))
}
