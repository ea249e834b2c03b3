package neuracraft

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMESnippetsCompile holds every Go snippet of README.md to code
// that compiles: each line of a ```go block must be a line of some .go
// file of the module (examples and tests included), so a snippet cannot
// drift from the API.
func TestREADMESnippetsCompile(t *testing.T) {
	lines := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (path == "bench" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || path == "readme_test.go" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for l := range strings.SplitSeq(string(data), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
		return nil
	})
	require.NoError(t, err)

	f, err := os.Open("README.md")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, n, blocks := false, 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case line == "```go":
			in = true
			blocks++
		case line == "```":
			in = false
		case in && strings.TrimSpace(line) != "":
			if !lines[strings.TrimSpace(line)] {
				t.Errorf("README.md:%d: %q is in no .go file of the module", n, strings.TrimSpace(line))
			}
		}
	}
	require.NoError(t, sc.Err())
	require.NotZero(t, blocks, "README.md has no Go snippets")
}
