// go-h2c-server: Go's net/http server with x/net/http2's h2c handler (cleartext HTTP/2 with
// prior knowledge and Upgrade: h2c), the peer bench/restart_h2.sh compares graceful-server
// with. SIGTERM runs Server.Shutdown (Go's graceful stop: one GOAWAY, then waits for active
// streams) with a 10 s limit; the process exits when it returns.
//
//	go-h2c-server -listen 127.0.0.1:PORT [-pid-file FILE]
//
// GET / answers "hello"; GET /slow?ms=N answers after N ms.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	pidFile := flag.String("pid-file", "", "write the pid here once listening")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello\n") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprint(w, "slept\n")
	})
	h2s := &http2.Server{}
	srv := &http.Server{Addr: *listen, Handler: h2c.NewHandler(mux, h2s)}
	// Shutdown must reach the HTTP/2 connections too (they are hijacked by h2c).
	if err := http2.ConfigureServer(srv, h2s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(done)
	}()
	if *pidFile != "" {
		go func() {
			time.Sleep(50 * time.Millisecond)
			os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		}()
	}
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-done
}
