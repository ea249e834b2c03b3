// Helpers for the tests of package neuracraft that register plugin codes: the
// registry is global, so a test registers its codes for its own run only.

package neuracraft

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// registerPluginCodesForTest registers codes and forgets them when t ends.
func registerPluginCodesForTest(t *testing.T, codes ...PluginCodeInfo) {
	t.Helper()
	require.NoError(t, RegisterPluginCodes(codes...), "RegisterPluginCodes")
	t.Cleanup(func() {
		for _, p := range codes {
			forgetPluginCode(p.Code)
		}
	})
}

// forgetPluginCode removes c from the registry, which the package itself
// never does.
func forgetPluginCode(c Code) {
	registry.mu.Lock()
	delete(registry.codes, c)
	registry.mu.Unlock()
}
