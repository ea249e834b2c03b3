// This file holds plugin codes (8000-8999), the registry through which a
// plugin's Go package names its codes, and IsPlugin.

package neuracraft

import (
	"errors"
	"fmt"
	"sync"
)

// PluginCode returns the plugin code for a plugin's 3-digit identifier:
// PluginCode(102) is Code(8102). It fails for an identifier outside 0-999.
func PluginCode(id int) (Code, error) {
	if id < 0 || id > 999 {
		return 0, fmt.Errorf("neuracraft: plugin identifier %d out of range 0-999", id)
	}
	return minPluginCode + Code(id), nil
}

// PluginID returns the plugin-specific identifier of a plugin code:
// Code(8102).PluginID() is 102, true. It returns 0, false when c is not a
// plugin code.
func (c Code) PluginID() (int, bool) {
	if !c.IsPlugin() {
		return 0, false
	}
	return int(c - minPluginCode), true
}

// PluginCodeInfo describes one plugin code, as the plugin's documentation
// does. It is what [RegisterPluginCodes] takes.
type PluginCodeInfo struct {
	// Code is the plugin code, 8000-8999.
	Code Code
	// Name is a short name, printed after the number in errors
	// ("8102 PDF Export Failed").
	Name string
	// Description says what went wrong.
	Description string
	// Retryable says whether trying the same request again can help. A
	// "retryable" flag sent in the error body overrides it.
	Retryable bool
}

// registry holds the registered plugin codes. Safe for concurrent use.
var registry struct {
	mu    sync.RWMutex
	codes map[Code]PluginCodeInfo
}

// RegisterPluginCodes records plugin codes so that errors carrying them are
// rendered by name and classified by their Retryable flag. A plugin's Go
// package calls it once, typically from init:
//
//	func init() {
//		if err := neuracraft.RegisterPluginCodes(
//			neuracraft.PluginCodeInfo{Code: 8102, Name: "PDF Export Failed"},
//		); err != nil {
//			panic(err)
//		}
//	}
//
// Registering the same information again is allowed and does nothing. It
// fails, registering none of codes, when a code is outside 8000-8999, has
// a name that is empty or not one clean line (control characters, runs of
// white space), or is already registered with different information. It is safe
// for concurrent use.
func RegisterPluginCodes(codes ...PluginCodeInfo) error {
	for i, p := range codes {
		if !p.Code.IsPlugin() {
			return fmt.Errorf("neuracraft: register plugin code %d: not in the plugin range 8000-8999", int(p.Code))
		}
		if p.Name == "" || cleanText(p.Name, len(p.Name)) != p.Name {
			return fmt.Errorf("neuracraft: register plugin code %d: name %q is empty or not one clean line", int(p.Code), p.Name)
		}
		for _, q := range codes[:i] {
			if q.Code == p.Code && q != p {
				return fmt.Errorf("neuracraft: register plugin code %d: given twice with different information", int(p.Code))
			}
		}
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	for _, p := range codes {
		if old, ok := registry.codes[p.Code]; ok && old != p {
			return fmt.Errorf("neuracraft: register plugin code %d: already registered as %q", int(p.Code), old.Name)
		}
	}
	if registry.codes == nil {
		registry.codes = make(map[Code]PluginCodeInfo)
	}
	for _, p := range codes {
		registry.codes[p.Code] = p
	}
	return nil
}

// lookupPluginCode returns the registered information for c, and false
// when c was not registered. It is safe for concurrent use.
func lookupPluginCode(c Code) (PluginCodeInfo, bool) {
	registry.mu.RLock()
	p, ok := registry.codes[c]
	registry.mu.RUnlock()
	return p, ok
}

// IsPlugin reports whether err, through any wrapping, carries a code that
// passes [Code.IsPlugin]. It is errors.Is(err, ErrPlugin).
func IsPlugin(err error) bool { return errors.Is(err, ErrPlugin) }
