// Helpers for the tests of where credentials go and where they are hidden
// (credentials.go, hide.go): the credentials that echoing servers repeat
// back, and the record of the credentials each path of a server received.

package neuracraft

import (
	"net/http"
	"sync"
)

// headerLog records the credentials each path was sent.
type headerLog struct {
	mu   sync.Mutex
	seen map[string][2]string // path -> X-API-Key, Authorization
}

func (l *headerLog) record(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string][2]string{}
	}
	l.seen[r.URL.Path] = [2]string{r.Header.Get("X-API-Key"), r.Header.Get("Authorization")}
}

func (l *headerLog) get(path string) ([2]string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.seen[path]
	return v, ok
}

// echoKey and echoToken are the credentials that the echoing servers of
// hide_test.go repeat back in every part of their answers, and that the
// tests of credentials.go send.
const (
	echoKey   = "nc_live_ECHOKEY0123456789"
	echoToken = "nc_oauth_ECHOTOKEN987654"
)
