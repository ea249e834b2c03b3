// This file puts a toxiproxy (github.com/Shopify/toxiproxy/v2, its server
// run in the test's process) between the members and Redis, to add
// latency, blackhole the traffic or cut the connections.

package redisfleet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// redisProxy is a toxiproxy in front of a redis-server.
type redisProxy struct {
	t     testing.TB
	proxy *toxiproxy.Proxy
	toxic []string // names of the toxics in place
}

// startProxy starts a toxiproxy in front of s for t, stopped at the end
// of the test.
func startProxy(t testing.TB, s *redisServer) *redisProxy {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(server, "redis", "127.0.0.1:0", s.addr())
	require.NoError(t, server.Collection.Add(p, true), "starting toxiproxy")
	t.Cleanup(func() { _ = server.Collection.Clear() })
	return &redisProxy{t: t, proxy: p}
}

func (p *redisProxy) addr() string { return p.proxy.Listen }

func (p *redisProxy) client(t testing.TB) redis.UniversalClient { return clientTo(t, p.addr()) }

// add puts a toxic of kind with attrs (JSON) on both directions.
func (p *redisProxy) add(kind, attrs string) {
	p.t.Helper()
	for _, stream := range []string{"upstream", "downstream"} {
		name := fmt.Sprintf("%s_%s_%d", kind, stream, len(p.toxic))
		_, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(
			fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"attributes":%s}`, name, kind, stream, attrs)))
		require.NoError(p.t, err, "adding toxic %s", name)
		p.toxic = append(p.toxic, name)
	}
}

// latency delays every exchange by d each way.
func (p *redisProxy) latency(d time.Duration) {
	p.add("latency", fmt.Sprintf(`{"latency":%d}`, d.Milliseconds()))
}

// blackhole drops everything sent either way from now on, keeping the
// connections open: a Redis that hangs.
func (p *redisProxy) blackhole() { p.add("timeout", `{"timeout":0}`) }

// cut closes every connection and refuses new ones until heal.
func (p *redisProxy) cut() { p.proxy.Stop() }

// heal removes the toxics and accepts connections again.
func (p *redisProxy) heal() {
	p.t.Helper()
	for _, name := range p.toxic {
		require.NoError(p.t, p.proxy.Toxics.RemoveToxic(context.Background(), name))
	}
	p.toxic = nil
	if !p.proxy.Enabled {
		require.NoError(p.t, p.proxy.Start(), "restarting toxiproxy")
	}
}
