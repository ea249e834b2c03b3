// Tests for plugin codes and the plugin-code registry. The registry is
// global: these tests use codes 8900-8999 only and forget what they
// register when they end.

package neuracraft

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPluginCode(t *testing.T) {
	t.Parallel()
	for id, want := range map[int]Code{0: 8000, 1: 8001, 102: 8102, 999: 8999} {
		got, err := PluginCode(id)
		require.NoError(t, err, "PluginCode(%d) = %d, %v; want %d, nil", id, int(got), err, int(want))
		assert.Equal(t, want, got, "PluginCode(%d) = %d, %v; want %d, nil", id, int(got), err, int(want))
	}
	for id := range 1000 {
		c, err := PluginCode(id)
		require.NoError(t, err, "PluginCode(%d)", id)
		back, ok := c.PluginID()
		require.True(t, ok, "PluginCode(%d) = %d; PluginID() = %d, %v; IsPlugin() = %v", id, int(c), back, ok, c.IsPlugin())
		require.Equal(t, id, back, "PluginCode(%d) = %d; PluginID() = %d, %v; IsPlugin() = %v", id, int(c), back, ok, c.IsPlugin())
		require.True(t, c.IsPlugin(), "PluginCode(%d) = %d; PluginID() = %d, %v; IsPlugin() = %v", id, int(c), back, ok, c.IsPlugin())
	}
}

func TestPluginCodeOutOfRange(t *testing.T) {
	t.Parallel()
	for _, id := range []int{-1, 1000, -8102, 8102, 1 << 40} {
		c, err := PluginCode(id)
		if !assert.Error(t, err, "PluginCode(%d) = %d", id, int(c)) {
			continue
		}
		assert.Zero(t, c, "PluginCode(%d)", id)
		assert.True(t, strings.Contains(err.Error(), strconv.Itoa(id)), "PluginCode(%d) error %q does not name the identifier", id, err)
	}
}

func TestPluginIDNotPlugin(t *testing.T) {
	t.Parallel()
	for _, c := range []Code{0, 404, 7999, 9000, -8102} {
		id, ok := c.PluginID()
		assert.False(t, ok, "Code(%d).PluginID()", int(c))
		assert.Zero(t, id, "Code(%d).PluginID()", int(c))
	}
}

func TestRegisterPluginCodes(t *testing.T) {
	vector := PluginCodeInfo{Code: 8901, Name: "Vector Index Rebuilding",
		Description: "The vector index is being rebuilt.", Retryable: true}
	ocr := PluginCodeInfo{Code: 8902, Name: "OCR Language Unsupported"}
	registerPluginCodesForTest(t, vector, ocr)

	for _, want := range []PluginCodeInfo{vector, ocr} {
		got, ok := lookupPluginCode(want.Code)
		require.True(t, ok, "lookupPluginCode(%d) found nothing", int(want.Code))
		assert.Empty(t, cmp.Diff(want, got), "lookupPluginCode(%d) (-want +got)", int(want.Code))
	}
	assert.Equal(t, "8901 Vector Index Rebuilding", Code(8901).String(), "String()")
	assert.Equal(t, vector.Description, Code(8901).Description(), "Description()")
	got := Code(8901).Resolution()
	assert.True(t, strings.Contains(got, "plugin-specific documentation"), "Resolution() = %q, want the reference's plugin advice", got)

	// The same information again is fine, alone or in a batch.
	assert.NoError(t, RegisterPluginCodes(vector), "re-registering the same information")
	assert.NoError(t, RegisterPluginCodes(ocr, vector, ocr), "re-registering the same batch")
	assert.NoError(t, RegisterPluginCodes(), "registering nothing")
	_, ok := lookupPluginCode(8903)
	assert.False(t, ok, "lookupPluginCode(8903) found a code nobody registered")
}

func TestRegisterPluginCodesFailuresRegisterNothing(t *testing.T) {
	registered := PluginCodeInfo{Code: 8910, Name: "PDF Template Invalid", Description: "The template does not render."}
	registerPluginCodesForTest(t, registered)
	fresh := PluginCodeInfo{Code: 8911, Name: "PDF Font Missing"}
	forgetPluginCodesAfter(t, fresh.Code) // in case the code under test registers it after all

	tests := []struct {
		name  string
		batch []PluginCodeInfo
	}{
		{"other name", []PluginCodeInfo{fresh, {Code: 8910, Name: "PDF Export Failed", Description: registered.Description}}},
		{"other description", []PluginCodeInfo{fresh, {Code: 8910, Name: registered.Name}}},
		{"other retryable", []PluginCodeInfo{fresh, {Code: 8910, Name: registered.Name, Description: registered.Description, Retryable: true}}},
		{"below range", []PluginCodeInfo{fresh, {Code: 7999, Name: "Too Low"}}},
		{"above range", []PluginCodeInfo{fresh, {Code: 9000, Name: "Too High"}}},
		{"HTTP status", []PluginCodeInfo{fresh, {Code: 404, Name: "Not Found"}}},
		{"zero", []PluginCodeInfo{fresh, {Name: "Zero"}}},
		{"empty name", []PluginCodeInfo{fresh, {Code: 8912, Description: "nameless"}}},
		{"name with a newline", []PluginCodeInfo{fresh, {Code: 8912, Name: "PDF\nExport"}}},
		{"name with a control character", []PluginCodeInfo{fresh, {Code: 8912, Name: "PDF\x1b[31mExport"}}},
		{"twice in batch", []PluginCodeInfo{fresh, {Code: 8913, Name: "A"}, {Code: 8913, Name: "B"}}},
		{"fresh twice in batch", []PluginCodeInfo{fresh, {Code: 8911, Name: "PDF Font Missing", Retryable: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RegisterPluginCodes(tt.batch...)
			require.Error(t, err, "RegisterPluginCodes succeeded")
			assert.True(t, strings.HasPrefix(err.Error(), "neuracraft: register plugin code "), "error %q does not say which code failed", err)
			for _, p := range tt.batch {
				if !p.Code.IsPlugin() {
					continue
				}
				got, ok := lookupPluginCode(p.Code)
				if p.Code == registered.Code {
					require.True(t, ok, "after the failed batch, %d is not registered", int(p.Code))
					assert.Empty(t, cmp.Diff(registered, got), "after the failed batch, %d (-before +after)", int(p.Code))
				} else if ok {
					assert.Fail(t, "registered by a failed batch", "code %d: %+v", int(p.Code), got)
				}
			}
		})
	}
}

func TestRegisteredNameInErrors(t *testing.T) {
	registerPluginCodesForTest(t, PluginCodeInfo{Code: 8920, Name: "PDF Template Invalid"})
	resp := newErrorResponse(http.StatusInternalServerError,
		`{"error":{"code":8920,"message":"PDF Export Plugin: Failed to generate document due to invalid template."}}`,
		"X-Request-ID", "req_8920")
	err := FromResponse(resp)
	want := "neuracraft: 8920 PDF Template Invalid: PDF Export Plugin: Failed to generate document due to invalid template. (HTTP 500, request req_8920)"
	require.NotNil(t, err, "Error() =\n%v\nwant\n%s", err, want)
	assert.Equal(t, want, err.Error(), "Error() =\n%v\nwant\n%s", err, want)

	// A message that only repeats the name is not printed twice.
	err = FromResponse(newErrorResponse(http.StatusBadRequest,
		`{"error":{"code":8920,"message":"PDF Template Invalid"}}`))
	want = "neuracraft: 8920 PDF Template Invalid (HTTP 400)"
	require.NotNil(t, err, "Error() = %v, want %s", err, want)
	assert.Equal(t, want, err.Error(), "Error() = %v, want %s", err, want)
}

func TestRegisteredRetryableFlag(t *testing.T) {
	registerPluginCodesForTest(t,
		PluginCodeInfo{Code: 8930, Name: "Vector Index Rebuilding", Retryable: true},
		PluginCodeInfo{Code: 8931, Name: "PDF Template Invalid", Retryable: false})
	tests := []struct {
		status int
		body   string
		want   bool
	}{
		{500, `{"error":{"code":8930,"message":"index rebuilding"}}`, true},
		{400, `{"error":{"code":8930,"message":"index rebuilding"}}`, true},
		{500, `{"error":{"code":8931,"message":"bad template"}}`, false},
		{503, `{"error":{"code":8931,"message":"bad template"}}`, false}, // the flag beats the status
		{429, `{"error":{"code":"8931","message":"bad template"}}`, false},
		{400, `{"error":{"code":8931,"message":"bad template","retryable":true}}`, true}, // the body beats the flag
		{503, `{"error":{"code":8930,"message":"index rebuilding","retryable":false}}`, false},
	}
	for _, tt := range tests {
		err := FromResponse(newErrorResponse(tt.status, tt.body))
		assert.Equal(t, tt.want, IsRetryable(err), "IsRetryable(%d %s)", tt.status, tt.body)
	}
}

// TestRegistryConcurrent registers, re-registers and looks up plugin codes
// from many goroutines at once; run it with -race.
func TestRegistryConcurrent(t *testing.T) {
	const goroutines = 64
	var shared []PluginCodeInfo
	for c := Code(8940); c < 8950; c++ {
		shared = append(shared, PluginCodeInfo{Code: c, Name: "Shared " + strconv.Itoa(int(c)), Retryable: c%2 == 0})
	}
	const contested = Code(8950)
	forgetPluginCodesAfter(t, contested)
	for _, p := range shared {
		forgetPluginCodesAfter(t, p.Code)
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range goroutines {
		wg.Go(func() {
			// Everyone registers the same shared codes: all must succeed.
			assert.NoError(t, RegisterPluginCodes(shared...), "goroutine %d", i)
			// Everyone claims the contested code with its own name: one wins.
			name := fmt.Sprintf("Racer %d", i)
			if RegisterPluginCodes(PluginCodeInfo{Code: contested, Name: name}) == nil {
				mu.Lock()
				winners = append(winners, name)
				mu.Unlock()
			}
			// Registered before, so seen now.
			for _, p := range shared {
				got, ok := lookupPluginCode(p.Code)
				assert.True(t, ok, "lookupPluginCode(%d)", int(p.Code))
				assert.Equal(t, p, got, "lookupPluginCode(%d)", int(p.Code))
				assert.Equal(t, strconv.Itoa(int(p.Code))+" "+p.Name, p.Code.String(), "String()")
			}
			err := FromResponse(newErrorResponse(503, `{"error":{"code":8941,"message":"busy"}}`))
			_ = err.Error()
			_ = IsRetryable(err)
		})
	}
	wg.Wait()

	require.Len(t, winners, 1, "%d goroutines registered code %d", len(winners), int(contested))
	got, _ := lookupPluginCode(contested)
	assert.Equal(t, winners[0], got.Name, "code %d: the name of the goroutine told it won", int(contested))
	for _, p := range shared {
		got, ok := lookupPluginCode(p.Code)
		assert.True(t, ok, "lookupPluginCode(%d)", int(p.Code))
		assert.Equal(t, p, got, "lookupPluginCode(%d)", int(p.Code))
	}
}

// forgetPluginCodesAfter forgets codes when t ends, whatever registered
// them.
func forgetPluginCodesAfter(t *testing.T, codes ...Code) {
	t.Cleanup(func() {
		for _, c := range codes {
			forgetPluginCode(c)
		}
	})
}
