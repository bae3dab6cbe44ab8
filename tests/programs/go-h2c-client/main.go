// go-h2c-client: load from Go's x/net/http2 client over cleartext HTTP/2 with prior
// knowledge (h2c), a careful client nobody here wrote: it retries by itself exactly the
// requests the server says it did not process (GOAWAY above the last stream id,
// REFUSED_STREAM) and reports every other loss as an error. -c goroutines send GET requests
// in a loop through one Transport; each goroutine's requests share that Transport's
// connection(s), so many streams are in flight on few connections.
//
//	go-h2c-client -url http://127.0.0.1:PORT/path [-c 8] [-d 2s] [-ready FILE]
//
// SIGINT or SIGTERM stops the load early (requests in flight finish). Prints one JSON line:
// {"requests", "ok", "failed", "connections_opened", "errors": {text: n}}. -ready FILE is
// created once the first response arrived. Exit 0 if no request failed, 1 if any failed,
// 2 for bad flags.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

func main() {
	url := flag.String("url", "", "http:// URL to GET")
	conc := flag.Int("c", 8, "concurrent requests (goroutines)")
	dur := flag.Duration("d", 2*time.Second, "how long to send requests")
	ready := flag.String("ready", "", "file created once the first response arrived")
	flag.Parse()
	if *url == "" || *conc < 1 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "usage: go-h2c-client -url http://host:port/path [-c N] [-d D] [-ready FILE]")
		os.Exit(2)
	}
	var opened int64
	tr := &http2.Transport{
		AllowHTTP: true, // h2c: prior knowledge over plain TCP
		DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
			atomic.AddInt64(&opened, 1)
			return net.Dial(network, addr)
		},
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
	}()

	var requests, ok, failed int64
	var mu sync.Mutex
	errs := map[string]int{}
	var readyOnce sync.Once
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				atomic.AddInt64(&requests, 1)
				// The request has its own context: stopping the load must not cancel requests in flight.
				req, _ := http.NewRequest("GET", *url, nil)
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode >= 400 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					atomic.AddInt64(&failed, 1)
					mu.Lock()
					errs[err.Error()]++
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				atomic.AddInt64(&ok, 1)
				if *ready != "" {
					readyOnce.Do(func() { os.WriteFile(*ready, []byte("ready\n"), 0o644) })
				}
			}
		}()
	}
	wg.Wait()
	out, _ := json.Marshal(map[string]interface{}{
		"requests": requests, "ok": ok, "failed": failed,
		"connections_opened": atomic.LoadInt64(&opened), "errors": errs,
	})
	fmt.Println(string(out))
	if failed > 0 {
		os.Exit(1)
	}
}
