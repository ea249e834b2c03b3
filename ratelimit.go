// This file reads the rate-limit header fields with which a server says
// how much of its quota a client has left: the IETF draft's RateLimit and
// RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers), its older
// RateLimit-Limit, -Remaining and -Reset, and the common
// X-RateLimit-Limit, -Remaining and -Reset.

package neuracraft

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A quota is what a response says of the client's rate limit.
type quota struct {
	remaining int64         // requests left until the reset
	reset     time.Duration // until the quota is full again; 0 when not said
	limit     int64         // requests allowed per window; 0 when not said
}

// Bounds on what parseQuota reads from a server, whatever it sends.
const (
	maxQuotaField   = 1024 // bytes of one field value; a longer one is ignored
	maxQuotaMembers = 16   // list members, or parameters of a member, read
	maxResetSeconds = 1e9  // about 31 years: a longer reset is garbage
)

// Canonical keys of the fields parseQuota reads.
const (
	hdrRateLimit       = "Ratelimit"             // draft 08 on: "name";r=..;t=..  (draft 07: limit=.., remaining=.., reset=..)
	hdrRateLimitPolicy = "Ratelimit-Policy"      // draft 08 on: "name";q=..;w=..
	hdrRemaining       = "Ratelimit-Remaining"   // drafts to 06
	hdrReset           = "Ratelimit-Reset"       // drafts to 06: delta-seconds
	hdrLimit           = "Ratelimit-Limit"       // drafts to 06
	hdrXRemaining      = "X-Ratelimit-Remaining" // common, not standard
	hdrXReset          = "X-Ratelimit-Reset"     // delta-seconds, or an instant in Unix seconds or milliseconds
	hdrXLimit          = "X-Ratelimit-Limit"
)

// parseQuota reads the quota that h states, at now, from the first of
// these that is present and valid: RateLimit (with RateLimit-Policy for
// the limit), RateLimit-Remaining (with -Reset and -Limit),
// X-RateLimit-Remaining (with -Reset and -Limit). When RateLimit names
// several quotas, the one that allows the fewest requests a second is
// taken. ok is false when h states none: no field, or only values that
// are malformed, negative, larger than a structured-field integer, or a
// reset already past.
func parseQuota(h http.Header, now time.Time) (q quota, ok bool) {
	if v := h[hdrRateLimit]; len(v) > 0 {
		if q, ok = parseRateLimit(v[0], headerValue(h, hdrRateLimitPolicy)); ok {
			return q, true
		}
	}
	if v := h[hdrRemaining]; len(v) > 0 {
		if q, ok = parseSplitQuota(v[0], headerValue(h, hdrReset), headerValue(h, hdrLimit), now, false); ok {
			return q, true
		}
	}
	if v := h[hdrXRemaining]; len(v) > 0 {
		return parseSplitQuota(v[0], headerValue(h, hdrXReset), headerValue(h, hdrXLimit), now, true)
	}
	return quota{}, false
}

// parseSplitQuota reads a quota stated in three fields, remaining, reset
// and limit (the last two may be empty). A reset of X-RateLimit-Reset
// (instants set) that is too large for delta-seconds is an instant: Unix
// seconds, or milliseconds past 1e12.
func parseSplitQuota(remaining, reset, limit string, now time.Time, instants bool) (quota, bool) {
	var q quota
	r, ok := parseQuotaInt(firstListMember(remaining))
	if !ok {
		return quota{}, false
	}
	q.remaining = r
	if reset != "" {
		d, ok := parseReset(reset, now, instants)
		if !ok {
			return quota{}, false
		}
		q.reset = d
	}
	if l, ok := parseQuotaInt(firstListMember(limit)); ok {
		q.limit = l
	}
	return q, true
}

// firstListMember is the bare value of the first member of a list such as
// "100, 100;w=60": "100".
func firstListMember(v string) string {
	if i := strings.IndexAny(v, ",;"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// parseReset reads delta-seconds, with a fraction allowed ("1.5"), or,
// when instants is set, a value past 1e9 as an instant in Unix seconds
// (past 1e12, milliseconds). A reset at or before now is not valid: the
// quota it spoke of is gone.
func parseReset(v string, now time.Time, instants bool) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	whole, frac, _ := strings.Cut(v, ".")
	n, ok := parseQuotaInt(whole)
	if !ok || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" || !instants && n > maxResetSeconds {
		return 0, false
	}
	var nanos int64
	for i := range 9 {
		nanos *= 10
		if i < len(frac) {
			nanos += int64(frac[i] - '0')
		}
	}
	var d time.Duration
	switch {
	case instants && n >= 1e12:
		d = time.UnixMilli(n).Sub(now)
	case instants && n >= 1e9:
		d = time.Unix(n, nanos).Sub(now)
	default:
		d = time.Duration(n)*time.Second + time.Duration(nanos)
	}
	return d, d > 0
}

// parseQuotaInt reads a non-negative integer of at most 15 digits, as a
// structured field allows.
func parseQuotaInt(v string) (int64, bool) {
	if v == "" || len(v) > 15 || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// parseRateLimit reads the RateLimit field v, and the RateLimit-Policy
// field policy (may be empty). From draft 08 on, RateLimit is a list of
// quotas, `"name";r=remaining;t=reset`, and RateLimit-Policy a list of
// policies, `"name";q=quota;w=window`; draft 07 had one dictionary,
// `limit=100, remaining=50, reset=5`. Quotas without a valid r are
// skipped; of the others, the one that allows the fewest requests a
// second is taken.
func parseRateLimit(v, policy string) (quota, bool) {
	members, ok := parseSF(v)
	if !ok {
		return quota{}, false
	}
	if q, ok := draft07(members); ok {
		return q, true
	}
	var best quota
	var name string
	found := false
	for _, m := range members {
		r, ok := m.param("r")
		if !ok || m.key != "" {
			continue
		}
		q := quota{remaining: r}
		if t, ok := m.param("t"); ok && t <= maxResetSeconds {
			q.reset = time.Duration(t) * time.Second
		} else if ok {
			continue
		}
		if !found || q.tighter(best) {
			best, name, found = q, m.value, true
		}
	}
	if !found {
		return quota{}, false
	}
	if policies, ok := parseSF(policy); ok {
		for _, p := range policies {
			if p.key == "" && p.value == name {
				if l, ok := p.param("q"); ok {
					best.limit = l
				}
				break
			}
		}
	}
	return best, true
}

// draft07 reads the dictionary form of RateLimit, limit=.., remaining=..,
// reset=..; ok is false when members are not that form.
func draft07(members []sfMember) (quota, bool) {
	var q quota
	has := false
	for _, m := range members {
		n, ok := parseQuotaInt(m.value)
		switch {
		case m.key == "":
			return quota{}, false
		case !ok:
			continue
		case m.key == "remaining":
			q.remaining, has = n, true
		case m.key == "reset" && n <= maxResetSeconds:
			q.reset = time.Duration(n) * time.Second
		case m.key == "limit":
			q.limit = n
		}
	}
	return q, has
}

// tighter reports whether q allows fewer requests a second than o: its
// remaining requests spread over a longer time each, or none left for
// longer.
func (q quota) tighter(o quota) bool {
	// q.reset/q.remaining > o.reset/o.remaining, without dividing by
	// zero; a quota without a reset counts as one that resets at once.
	return float64(q.reset)*float64(o.remaining) > float64(o.reset)*float64(q.remaining)
}

// An sfMember is a member of a structured field (RFC 8941) as parseSF
// reads it: a list item, whose bare value is a string, token or number
// (key is empty), or a dictionary member key=value; with the integer
// parameters of either.
type sfMember struct {
	key, value string
	params     []sfParam
}

type sfParam struct {
	key string
	n   int64
	ok  bool // an integer in range
}

// param returns the value of the integer parameter key of m, if it has
// one that is valid.
func (m *sfMember) param(key string) (int64, bool) {
	for _, p := range m.params {
		if p.key == key {
			return p.n, p.ok
		}
	}
	return 0, false
}

// parseSF reads a structured-field list or dictionary of at most
// maxQuotaMembers members, whose values are bare items (inner lists are
// not read: the field is then invalid), and keeps of each member its key,
// its value as written (a string without its quotes, escapes kept) and
// its integer parameters. ok is false for an empty or malformed field, or
// one longer than maxQuotaField.
func parseSF(v string) (members []sfMember, ok bool) {
	if len(v) > maxQuotaField {
		return nil, false
	}
	p := sfParser{s: strings.TrimSpace(v)}
	if p.s == "" {
		return nil, false
	}
	for {
		if len(members) == maxQuotaMembers {
			return nil, false
		}
		var m sfMember
		if !p.member(&m) {
			return nil, false
		}
		members = append(members, m)
		p.spaces()
		if p.done() {
			return members, true
		}
		if !p.take(',') {
			return nil, false
		}
		p.spaces()
		if p.done() {
			return nil, false // a trailing comma
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) take(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *sfParser) spaces() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// member reads `bare-item params` or `key[=bare-item] params` into m.
func (p *sfParser) member(m *sfMember) bool {
	start := p.i
	if key := p.key(); key != "" && p.take('=') {
		m.key = key // a dictionary member
	} else {
		p.i = start // a list item
	}
	v, ok := p.bare()
	if !ok {
		return false
	}
	m.value = v
	for p.take(';') {
		p.spaces()
		if !p.done() && !isKeyStart(p.s[p.i]) {
			return false
		}
		key := p.key()
		if key == "" {
			return false
		}
		var param sfParam
		param.key = key
		if p.take('=') {
			v, ok := p.bare()
			if !ok {
				return false
			}
			param.n, param.ok = parseQuotaInt(v)
		}
		if len(m.params) == maxQuotaMembers {
			return false
		}
		m.params = append(m.params, param)
	}
	return true
}

func isKeyStart(c byte) bool { return c >= 'a' && c <= 'z' || c == '*' }

// key reads a key: lowercase letters, digits, "_", "-", "." and "*".
func (p *sfParser) key() string {
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i]
}

// bare reads a bare item and returns it as written: a string without its
// quotes, or the characters of a number, token, boolean or byte
// sequence.
func (p *sfParser) bare() (string, bool) {
	if p.done() {
		return "", false
	}
	start := p.i
	switch c := p.s[p.i]; {
	case c == '"':
		p.i++
		for p.i < len(p.s) {
			switch c := p.s[p.i]; {
			case c == '\\':
				if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
					return "", false
				}
				p.i += 2
			case c == '"':
				p.i++
				return p.s[start+1 : p.i-1], true
			case c < 0x20 || c > 0x7e:
				return "", false
			default:
				p.i++
			}
		}
		return "", false // no closing quote
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return "", false
		}
		p.i += end + 2
	case c == '?':
		if p.i+1 >= len(p.s) || (p.s[p.i+1] != '0' && p.s[p.i+1] != '1') {
			return "", false
		}
		p.i += 2
	case c == '-' || c >= '0' && c <= '9':
		p.i++
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.') {
			p.i++
		}
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '*':
		p.i++
		for p.i < len(p.s) && (isToken68Char(p.s[p.i]) || p.s[p.i] == ':') { // tchar, ":" and "/"
			p.i++
		}
	default:
		return "", false
	}
	return p.s[start:p.i], true
}

// quotaLow is how many requests left count as few when the server does
// not state its limit; when it does, a quarter of it is few.
const quotaLow = 10

// quotaStated reports whether h has one of the fields that state a
// quota: the whole cost of a response without them.
func quotaStated(h http.Header) bool {
	return len(h[hdrRateLimit]) > 0 || len(h[hdrRemaining]) > 0 || len(h[hdrXRemaining]) > 0
}

// applyQuota paces the call's host from the quota that a response's
// header h states. With none left, every request to the host waits for
// the reset, as for a Retry-After; with few left (a quarter of the limit,
// or quotaLow when the limit is not stated), requests go no faster than
// what is left spread over the time to the reset, until then; with more
// left, a pace from an earlier response ends. A quota whose reset is
// unknown or beyond MaxRetryAfter changes nothing: a server cannot hold
// requests longer than a Retry-After could. DisableCooldown turns it off.
func (c *call) applyQuota(h http.Header) {
	if c.t.DisableCooldown {
		return
	}
	now := time.Now()
	q, ok := parseQuota(h, now)
	if !ok || q.reset <= 0 || q.reset > c.t.maxRetryAfter() {
		return
	}
	low := q.remaining <= quotaLow
	if q.limit > 0 {
		low = q.remaining*4 <= q.limit
	}
	switch {
	case q.remaining == 0:
		c.hostStateAt(now).coolUntil(now.Add(q.reset), q.reset, CodeTooManyRequests)
	case low:
		c.paceChanged(c.hostStateAt(now).quotaAt(now, q.reset/time.Duration(q.remaining), now.Add(q.reset)))
	case c.state != nil:
		c.paceChanged(c.state.quotaAt(now, 0, time.Time{}))
	}
}
