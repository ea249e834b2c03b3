package redisfleet_test

import (
	"log/slog"
	"net/http"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/redisfleet"
	"github.com/redis/go-redis/v9"
)

// Every replica of a service builds its client this way, with the same
// Redis and Prefix. (This example is compiled, not run: it needs a Redis;
// go run ./examples/fleet starts one.)
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true,
		MinIdleConns: 8}) // connections ready for a storm's first turns
	defer rdb.Close()
	fleet := redisfleet.New(rdb, redisfleet.Options{
		OnError: func(err error) { slog.Warn("neuracraft fleet: Redis trouble, working alone", "err", err) },
	})
	defer fleet.Close() // before rdb.Close
	client := &http.Client{Transport: &neuracraft.Transport{Coordinator: fleet}}
	_ = client // use it like any *http.Client
}
