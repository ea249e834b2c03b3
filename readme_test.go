// Tests that every Go snippet of README.md and docs/*.md builds, passes
// go vet, runs against the fake server, and closes the body of every
// response it gets, and that their relative links lead somewhere.

package neuracraft

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// snippet is one ```go block of a Markdown file. A block fenced as
// "```go path/to/file.go" is an excerpt of that file, which CI builds on
// its own (an example with dependencies this module does not have); it
// is checked to be one, not compiled here.
type snippet struct {
	file   string // the Markdown file, as given to goSnippets
	line   int    // of the block's first line of code, from 1
	code   string
	source string // the file a block is an excerpt of, or ""
}

// goSnippets returns the ```go blocks of the Markdown file at path.
func goSnippets(t *testing.T, path string) []snippet {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []snippet
	var cur *snippet
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && line == "```go":
			cur = &snippet{file: path, line: n + 1}
		case cur == nil && strings.HasPrefix(line, "```go "):
			cur = &snippet{file: path, line: n + 1, source: strings.TrimSpace(strings.TrimPrefix(line, "```go "))}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "%s: a ```go block is not closed", path)
	return out
}

// snippetParams are the variables a snippet may use without declaring
// them, as the Markdown's prose introduces them: the fake server, an error
// to inspect, a logger, and the client a service already has.
const snippetParams = "srv *neuracrafttest.Server, err error, logger *slog.Logger, old *http.Client"

// snippetImports are what a snippet may use without importing it.
var snippetImports = []struct{ path, use string }{
	{"context", "context.Background"},
	{"errors", "errors.Is"},
	{"fmt", "fmt.Sprint"},
	{"log", "log.Fatal"},
	{"log/slog", "slog.Default"},
	{"net/http", "http.NewRequest"},
	{"time", "time.Second"},
	{"github.com/neuracraft/neuracraft-go", "neuracraft.WrapClient"},
	{"github.com/neuracraft/neuracraft-go/neuracrafttest", "neuracrafttest.NewServer"},
}

// snippetFile returns a Go file that holds each snippet as the body of a
// function of snippetParams returning error. Line directives make the
// compiler and go vet report the Markdown file's own lines. A snippet's variables
// that nothing after it uses are marked used: a snippet is a fragment of
// a longer program. What that would hide, a response nobody closes, is
// checked by unclosedResponses.
func snippetFile(t *testing.T, snips []snippet) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("package snippets\n\nimport (\n")
	for _, im := range snippetImports {
		fmt.Fprintf(&b, "\t%q\n", im.path)
	}
	b.WriteString(")\n\nvar (\n")
	for _, im := range snippetImports {
		fmt.Fprintf(&b, "\t_ = %s\n", im.use)
	}
	b.WriteString(")\n")
	for i, s := range snips {
		fmt.Fprintf(&b, "\nfunc snippet%d(%s) error {\n\t_, _, _, _ = srv, err, logger, old\n\t{\n", i+1, snippetParams)
		fmt.Fprintf(&b, "//line %s:%d\n%s", s.file, s.line, s.code)
		fmt.Fprintf(&b, "//line snippet%d.go:1\n", i+1)
		for _, name := range declaredNames(t, s) {
			fmt.Fprintf(&b, "\t\t_ = %s\n", name)
		}
		b.WriteString("\t}\n\treturn nil\n}\n")
	}
	return b.String()
}

// declaredNames returns the variables a snippet declares at its top level.
func declaredNames(t *testing.T, s snippet) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\nfunc _() {\n"+s.code+"\n}\n", 0)
	require.NoError(t, err, "%s:%d: the snippet is not a list of Go statements", s.file, s.line)
	var names []string
	for _, st := range f.Decls[0].(*ast.FuncDecl).Body.List {
		switch st := st.(type) {
		case *ast.AssignStmt:
			if st.Tok == token.DEFINE {
				for _, e := range st.Lhs {
					if id, ok := e.(*ast.Ident); ok && id.Name != "_" {
						names = append(names, id.Name)
					}
				}
			}
		case *ast.DeclStmt:
			if gd, ok := st.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
				for _, spec := range gd.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						if id.Name != "_" {
							names = append(names, id.Name)
						}
					}
				}
			}
		}
	}
	return names
}

// unclosedResponses returns a message for each response of an
// http.Client call (x.Do(req), x.Get(url)) in src whose Body is never
// closed in the same function, or which is dropped unread.
func unclosedResponses(t *testing.T, src string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "snippets.go", src, 0)
	require.NoError(t, err)
	var problems []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		closed := map[string]bool{}
		ast.Inspect(fn, func(n ast.Node) bool {
			if name, ok := bodyCloseCall(n); ok {
				closed[name] = true
			}
			return true
		})
		ast.Inspect(fn, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || len(as.Rhs) != 1 || len(as.Lhs) != 2 || !isResponseCall(as.Rhs[0]) {
				return true
			}
			id, _ := as.Lhs[0].(*ast.Ident)
			switch {
			case id == nil || id.Name == "_":
				problems = append(problems, fmt.Sprintf("%s: the response is dropped: its body is never closed", fset.Position(as.Pos())))
			case !closed[id.Name]:
				problems = append(problems, fmt.Sprintf("%s: %s.Body is never closed", fset.Position(as.Pos()), id.Name))
			}
			return true
		})
	}
	return problems
}

// isResponseCall reports whether e is a call of an http.Client method
// that returns a response with a body: x.Do(req) or x.Get(url), one
// argument (Client.Do of this package takes five and returns no body).
func isResponseCall(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && (sel.Sel.Name == "Do" || sel.Sel.Name == "Get")
}

// bodyCloseCall reports whether n is a call x.Body.Close(), and x.
func bodyCloseCall(n ast.Node) (string, bool) {
	call, ok := n.(*ast.CallExpr)
	if !ok {
		return "", false
	}
	closeSel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || closeSel.Sel.Name != "Close" {
		return "", false
	}
	bodySel, ok := closeSel.X.(*ast.SelectorExpr)
	if !ok || bodySel.Sel.Name != "Body" {
		return "", false
	}
	id, ok := bodySel.X.(*ast.Ident)
	if !ok {
		return "", false
	}
	return id.Name, true
}

// snippetModule writes src as the only file of a module that uses this
// one (through a replace directive, offline) and returns its directory.
func snippetModule(t *testing.T, src string) string {
	t.Helper()
	root, err := filepath.Abs(".")
	require.NoError(t, err)
	dir := t.TempDir()
	goMod := fmt.Sprintf("module snippets\n\ngo 1.26\n\nrequire github.com/neuracraft/neuracraft-go v0.0.0\n\n"+
		"replace github.com/neuracraft/neuracraft-go => %s\n", root)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644))
	sum, err := os.ReadFile("go.sum")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "snippets.go"), []byte(src), 0o644))
	return dir
}

// goIn runs the go command with args in dir, offline, and returns its
// output and whether it succeeded.
func goIn(t *testing.T, dir string, args ...string) (string, bool) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the snippets")
	cmd := exec.Command(goTool, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// vetSnippets writes src as the only file of a module that uses this one
// and runs go vet on it, which type-checks it as the compiler does. It
// returns go vet's output and whether it succeeded.
func vetSnippets(t *testing.T, src string) (string, bool) {
	t.Helper()
	return goIn(t, snippetModule(t, src), "vet", ".")
}

// markdownFiles are the Markdown files whose Go snippets and links are
// checked: the README and every page under docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join("docs", "*.md"))
	require.NoError(t, err)
	return append([]string{"README.md"}, docs...)
}

// TestMarkdownSnippetsBuild builds and vets every ```go block of README.md
// and docs/*.md, each as the body of a function, runs each against a fake
// server of its own, checks that each closes the body of every response it
// gets, and that each excerpt is still in its source file. Problems are
// reported as file:line.
func TestMarkdownSnippetsBuild(t *testing.T) {
	t.Parallel()
	var snips []snippet
	for _, file := range markdownFiles(t) {
		n := 0
		for _, s := range goSnippets(t, file) {
			if s.source != "" {
				t.Run(fmt.Sprintf("excerpt %s:%d", s.file, s.line), func(t *testing.T) {
					checkExcerpt(t, s)
				})
				continue
			}
			snips = append(snips, s)
			n++
		}
		if file == "README.md" {
			require.NotZero(t, n, "README.md has no Go snippets")
		}
	}
	src := snippetFile(t, snips)
	for _, p := range unclosedResponses(t, src) {
		t.Error(p)
	}
	dir := snippetModule(t, src)
	if out, ok := goIn(t, dir, "vet", "."); !ok {
		t.Fatalf("the Go snippets of the Markdown files do not build or vet:\n%s", out)
	}
	if out, ok := runSnippets(t, dir, snips); !ok {
		t.Errorf("the Go snippets of the Markdown files fail against the fake server:\n%s", out)
	}
}

// runSnippets runs every snippet of the module dir, made by snippetModule
// from snips, each against a fake server of its own (srv), with a nil err,
// a logger that discards and an empty old client, as a program. It
// returns the program's output and whether every snippet returned nil
// without panicking; a failure names the snippet's file and line.
func runSnippets(t *testing.T, dir string, snips []snippet) (string, bool) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, "snippets.go"))
	require.NoError(t, err)
	src = bytes.Replace(src, []byte("package snippets\n"), []byte("package main\n"), 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "snippets.go"), src, 0o644))
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"fmt\"\n\t\"log/slog\"\n\t\"net/http\"\n\t\"os\"\n\t\"sync\"\n\n" +
		"\t\"github.com/neuracraft/neuracraft-go/neuracrafttest\"\n)\n\n" +
		"type snippetFunc func(*neuracrafttest.Server, error, *slog.Logger, *http.Client) error\n\n" +
		"var snippets = []struct {\n\tat  string\n\trun snippetFunc\n}{\n")
	for i, s := range snips {
		fmt.Fprintf(&b, "\t{%q, snippet%d},\n", fmt.Sprintf("%s:%d", s.file, s.line), i+1)
	}
	b.WriteString(`}

func main() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := false
	for _, s := range snippets {
		wg.Go(func() {
			srv := neuracrafttest.NewServer()
			defer srv.Close()
			err := s.run(srv, nil, slog.New(slog.DiscardHandler), &http.Client{})
			if err != nil {
				mu.Lock()
				defer mu.Unlock()
				fmt.Printf("%s: the snippet returned %v\n", s.at, err)
				failed = true
			}
		})
	}
	wg.Wait()
	if failed {
		os.Exit(1)
	}
}
`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(b.String()), 0o644))
	return goIn(t, dir, "run", ".")
}

// checkExcerpt checks that every line of s appears, in order, in the file
// it says it comes from (leading and trailing white space aside).
func checkExcerpt(t *testing.T, s snippet) {
	t.Helper()
	data, err := os.ReadFile(s.source)
	require.NoError(t, err, "%s:%d: the excerpt's source", s.file, s.line)
	if p := excerptProblem(s, string(data)); p != "" {
		t.Error(p)
	}
}

// excerptProblem says where the excerpt s leaves source, or "".
func excerptProblem(s snippet, source string) string {
	lines := strings.Split(source, "\n")
	i := 0
	for n, want := range strings.Split(strings.TrimSpace(s.code), "\n") {
		want = strings.TrimSpace(want)
		for i < len(lines) && strings.TrimSpace(lines[i]) != want {
			i++
		}
		if i == len(lines) {
			return fmt.Sprintf("%s:%d: %q is not in %s (after the lines before it)", s.file, s.line+n, want, s.source)
		}
		i++
	}
	return ""
}

// TestSnippetExcerpts checks that an excerpt is recognised by its fence,
// and that one which drifted from its source is caught.
func TestSnippetExcerpts(t *testing.T) {
	t.Parallel()
	const source = "package main\n\nfunc main() {\n\ta := 1\n\t_ = a\n}\n"
	readme := filepath.Join(t.TempDir(), "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("```go main.go\na := 1\n_ = a\n```\n\n"+
		"```go main.go\n_ = a\na := 1\n```\n\n```go main.go\na := 2\n```\n"), 0o644))
	snips := goSnippets(t, readme)
	require.Len(t, snips, 3)
	assert.Equal(t, "main.go", snips[0].source)
	assert.Empty(t, excerptProblem(snips[0], source))
	assert.Equal(t, readme+`:8: "a := 1" is not in main.go (after the lines before it)`, excerptProblem(snips[1], source))
	assert.Equal(t, readme+`:12: "a := 2" is not in main.go (after the lines before it)`, excerptProblem(snips[2], source))
}

// TestSnippetChecksCatchMistakes feeds the checks snippets that must fail:
// one that does not compile, one that leaks a response body, one that
// drops the response, and one that is fine.
func TestSnippetChecksCatchMistakes(t *testing.T) {
	const readme = "# Title\n\n```go\n" +
		"resp, err := http.Get(srv.URL)\nif err != nil {\n\treturn err\n}\nfmt.Println(resp.Status)\n" + // leaks
		"```\n\n```go\n" +
		"_, err = http.DefaultClient.Do(nil)\n" + // drops the response
		"```\n\n```go\n" +
		"resp, err := neuracraft.WrapClient(old).Get(srv.URL)\nif err != nil {\n\treturn err\n}\ndefer resp.Body.Close()\n" + // fine
		"```\n\n```go\n" +
		"fmt.Println(neuracraft.NoSuchName)\n" + // does not compile
		"```\n"
	path := filepath.Join(t.TempDir(), "README.md")
	require.NoError(t, os.WriteFile(path, []byte(readme), 0o644))
	snips := goSnippets(t, path)
	require.Len(t, snips, 4)
	assert.Equal(t, []int{4, 12, 16, 24}, []int{snips[0].line, snips[1].line, snips[2].line, snips[3].line})

	src := snippetFile(t, snips)
	problems := unclosedResponses(t, src)
	require.Len(t, problems, 2, "%q", problems)
	assert.Equal(t, path+":4: resp.Body is never closed", problems[0])
	assert.Equal(t, path+":12: the response is dropped: its body is never closed", problems[1])

	out, ok := vetSnippets(t, src)
	require.False(t, ok, "a snippet naming neuracraft.NoSuchName passed go vet")
	assert.Contains(t, out, "README.md:24:")
	assert.Contains(t, out, "NoSuchName")
	assert.NotContains(t, out, "README.md:4:", "the leak compiles; only the missing name is a build error")
}

// TestSnippetRunCatchesFailures: a snippet that fails against the fake
// (the README's old Runs snippet, which started a run of a pipeline the
// fake does not have) is reported with its file and line; one that works
// is not.
func TestSnippetRunCatchesFailures(t *testing.T) {
	t.Parallel()
	const readme = "# Title\n\n```go\n" +
		"client := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey}\n" +
		"_, err = client.StartRun(context.Background(), \"pipe_abc123\", nil)\nreturn err\n" +
		"```\n\n```go\n" +
		"fmt.Println(\"fine\")\n" +
		"```\n"
	path := filepath.Join(t.TempDir(), "README.md")
	require.NoError(t, os.WriteFile(path, []byte(readme), 0o644))
	snips := goSnippets(t, path)
	require.Len(t, snips, 2)
	dir := snippetModule(t, snippetFile(t, snips))
	out, ok := runSnippets(t, dir, snips)
	require.False(t, ok, "a snippet that fails with 404 passed:\n%s", out)
	assert.Contains(t, out, path+":4: the snippet returned neuracraft: POST /v1/pipelines/pipe_abc123/run: 404 Not Found")
	assert.NotContains(t, out, path+":10:")
	assert.Contains(t, out, "fine")
}

// markdownLink matches an inline Markdown link's target: [text](target).
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingAnchors returns the anchors GitHub gives the headings of the
// Markdown text md: lower case, spaces as hyphens, punctuation other
// than hyphens and underscores dropped.
func headingAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	inFence := false
	for line := range strings.SplitSeq(md, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// linkProblems returns a message for each relative link of the Markdown
// file at path whose file does not exist, or whose #anchor is not a
// heading of its Markdown target.
func linkProblems(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var problems []string
	inFence := false
	for n, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence {
			continue
		}
		for _, m := range markdownLink.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := path
			if file != "" {
				dest = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
			}
			body, err := os.ReadFile(dest)
			if err != nil {
				if info, serr := os.Stat(dest); serr == nil && info.IsDir() && anchor == "" {
					continue
				}
				problems = append(problems, fmt.Sprintf("%s:%d: %s: no such file", path, n+1, target))
				continue
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !headingAnchors(string(body))[anchor] {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: no heading with that anchor", path, n+1, target))
			}
		}
	}
	return problems
}

// TestMarkdownLinks checks that every relative link of README.md and
// docs/*.md leads to a file of the repository and, with an anchor, to a
// heading of it, as GitHub renders them.
func TestMarkdownLinks(t *testing.T) {
	for _, file := range markdownFiles(t) {
		for _, p := range linkProblems(t, file) {
			t.Error(p)
		}
	}
}

// TestMarkdownLinkChecksCatchMistakes feeds the link check a page with a
// good link, a missing file and a missing anchor.
func TestMarkdownLinkChecksCatchMistakes(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.md"), []byte("# Other page\n\n## HTTPS, HTTP/2 and OAuth 2.0\n"), 0o644))
	page := filepath.Join(dir, "page.md")
	require.NoError(t, os.WriteFile(page, []byte("# Page\n\n[a](other.md#https-http2-and-oauth-20) [b](#page)\n"+
		"[c](missing.md)\n[d](other.md#nowhere) [e](https://example.com/x)\n"), 0o644))
	assert.Equal(t, []string{
		page + ":4: missing.md: no such file",
		page + ":5: other.md#nowhere: no heading with that anchor",
	}, linkProblems(t, page))
}

// TestDocumentedLimits pins the limits and defaults that README.md and
// docs/*.md state as numbers, so that changing one fails here and sends
// the change to the docs too.
func TestDocumentedLimits(t *testing.T) {
	for _, tt := range []struct {
		what      string
		got, want any
	}{
		{"RetryPolicy.MaxAttempts default (README settings table)", defaultMaxAttempts, 5},
		{"RetryPolicy.BaseDelay default (README settings table)", defaultBaseDelay, 500 * time.Millisecond},
		{"RetryPolicy.MaxDelay default (README settings table)", defaultMaxDelay, 30 * time.Second},
		{"RetryPolicy.MaxRetryAfter default (README settings table)", defaultMaxRetryAfter, 60 * time.Second},
		{"Transport.MaxErrorBody default, 64 KiB (README, docs/errors.md)", defaultMaxErrorBody, 64 << 10},
		{"drain of a failed attempt, 256 KiB (docs/retries.md)", maxDrain, 256 << 10},
		{"hosts in trouble tracked, 1024 (docs/retries.md, docs/choices.md)", maxHosts, 1024},
		{"gap between released requests before a pace, 10 ms (docs/fleet.md)", maxReleaseGap, 10 * time.Millisecond},
		{"pace after pushback starts at 20 a second (README, docs/retries.md)", paceStartGap, 50 * time.Millisecond},
		{"slow start: a fifth shorter every 2 successes (docs/retries.md)", paceStartWins, 2},
		{"slow start up to 160 a second (docs/retries.md)", paceStartEnd, 6250 * time.Microsecond},
		{"linear slow start: from 25 a second (docs/retries.md)", paceLinStart, 40 * time.Millisecond},
		{"linear slow start: 18 a second more every second (docs/retries.md)", paceClimb, 18},
		{"after it, a cut: a fifth slower (docs/retries.md)", paceCut, 5},
		{"a burst: at least 3 counted (docs/retries.md, docs/fleet.md)", paceMinBank, 3},
		{"at most 1000 of them after a pause, 1 ms apart (docs/retries.md)", paceMaxBank, 1000},
		{"the bank goes 1 ms apart (docs/retries.md)", paceMinGap, time.Millisecond},
		{"no faster gap tried for 10 s after a 429 (docs/retries.md, Transport)", paceHold, 10 * time.Second},
		{"then a twentieth faster every 8 successes (docs/retries.md)", paceProbeWins, 8},
		{"the pace ends 30 s after the last 429 (README, docs/retries.md, Transport)", paceQuiet, 30 * time.Second},
		{"few left: 10 when the limit is not stated (docs/retries.md)", quotaLow, 10},
		{"APIError.Message cap, 300 (docs/errors.md)", maxMessage, 300},
		{"APIError.Reason cap, 64 (docs/errors.md)", maxReason, 64},
		{"Client.MaxResponseBody default, 10 MiB (docs/client.md)", defaultMaxResponseBody, 10 << 20},
		{"RunError.Stack entries, 50 (docs/client.md)", maxStackFrames, 50},
		{"WaitRun first backoff ceiling, 1 s (docs/client.md)", runPollBase, time.Second},
		{"WaitRun backoff cap, 30 s (docs/client.md)", runPollMax, 30 * time.Second},
		{"WaitRun Retry-After honoured up to 60 s (docs/client.md)", defaultMaxRetryAfter, 60 * time.Second},
	} {
		assert.EqualValues(t, tt.want, tt.got, tt.what)
	}
}
