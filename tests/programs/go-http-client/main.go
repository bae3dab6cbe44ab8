// go-http-client: load from Go's own net/http client, to check graceful-bench's count against a
// careful pooled client nobody here wrote. Each of -c goroutines sends POST requests in a loop
// (a pause of -think, jittered 50%..150%, between them) through one shared Transport with a
// pool of -c keep-alive connections. The body is a reader without GetBody and the method is
// POST, so the Transport cannot replay a request (net/http retries only replayable requests,
// or requests of which nothing was written): every request it sent on a connection that then
// closed is reported as failed, not silently retried.
//
// With the shared pool (default), a connection a server closes right after a response can be
// handed to another goroutine in the instant before the Transport's background read has seen
// the FIN: that request fails with "server closed idle connection". -per-client-pool gives
// each goroutine its own pool, as graceful-bench's clients each own their connection.
//
//	go-http-client -url http://127.0.0.1:PORT/echo [-c 4] [-d 2s] [-think 0] [-body 64] [-ready FILE] [-per-client-pool]
//
// SIGINT or SIGTERM stops the load early (requests in flight finish). Prints one JSON line: {"requests", "ok", "failed", "connections_opened", "errors": {text: n}}.
// -ready FILE is created once the first response arrived (tests wait for it). Exit 0 if no
// request failed, 1 if any failed, 2 for bad flags.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// onceReader is an io.Reader that is not a *bytes.Reader, *bytes.Buffer or *strings.Reader,
// so http.NewRequest sets no GetBody: the request cannot be replayed.
type onceReader struct{ r io.Reader }

func (o *onceReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func main() {
	url := flag.String("url", "", "URL to POST to")
	conns := flag.Int("c", 4, "concurrent clients (and pool size)")
	dur := flag.Duration("d", 2*time.Second, "how long to send requests")
	think := flag.Duration("think", 0, "pause between a client's requests (jittered 50%..150%)")
	bodySize := flag.Int("body", 64, "request body bytes")
	ready := flag.String("ready", "", "file created once the first response arrived")
	perClient := flag.Bool("per-client-pool", false,
		"one Transport (pool of one connection) per client, as graceful-bench's clients; default one shared pool")
	flag.Parse()
	if *url == "" || *conns < 1 || *dur <= 0 || *bodySize < 0 {
		fmt.Fprintln(os.Stderr, "go-http-client: need -url, -c >= 1, -d > 0, -body >= 0")
		os.Exit(2)
	}
	newClient := func(pool int) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConns:        pool,
			MaxIdleConnsPerHost: pool,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}}
	}
	shared := newClient(*conns)
	payload := bytes.Repeat([]byte("x"), *bodySize)

	var requests, ok, failed, opened int64
	var mu sync.Mutex
	errs := map[string]int{}
	var readyOnce sync.Once
	stopAt := time.Now().Add(*dur)
	// SIGINT/SIGTERM: stop sending, let requests in flight finish, report (as graceful-bench).
	var stopping int32
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { <-sigs; atomic.StoreInt32(&stopping, 1) }()
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			client := shared
			if *perClient {
				client = newClient(1)
			}
			for time.Now().Before(stopAt) && atomic.LoadInt32(&stopping) == 0 {
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
					if !info.Reused {
						atomic.AddInt64(&opened, 1)
					}
				}}
				req, err := http.NewRequest("POST", *url, &onceReader{bytes.NewReader(payload)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "go-http-client:", err)
					os.Exit(2)
				}
				req.ContentLength = int64(len(payload))
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				atomic.AddInt64(&requests, 1)
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode < 200 || resp.StatusCode >= 400) {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					atomic.AddInt64(&failed, 1)
					// Errors name the connection's ports; keep only the kind.
					text := err.Error()
					if i := strings.LastIndex(text, ": "); i >= 0 {
						text = text[i+2:]
					}
					mu.Lock()
					errs[text]++
					mu.Unlock()
				} else {
					atomic.AddInt64(&ok, 1)
					if *ready != "" {
						readyOnce.Do(func() { os.WriteFile(*ready, []byte("1\n"), 0o644) })
					}
				}
				if *think > 0 {
					time.Sleep(time.Duration(float64(*think) * (0.5 + rng.Float64())))
				} else if err != nil {
					time.Sleep(10 * time.Millisecond) // as graceful-bench --fail-pause
				}
			}
		}(int64(i) + time.Now().UnixNano())
	}
	wg.Wait()
	out, _ := json.Marshal(map[string]interface{}{
		"requests": requests, "ok": ok, "failed": failed, "connections_opened": opened, "errors": errs,
	})
	fmt.Println(string(out))
	if failed > 0 {
		os.Exit(1)
	}
}
