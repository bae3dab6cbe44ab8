// graceful-run-go-worker: a plain Go net/http server that takes its listeners from systemd
// socket activation (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID) and says READY=1 on
// NOTIFY_SOCKET: the kind of server graceful-run exists for, written with the standard
// library only.
//
// On SIGTERM it answers with "Connection: close" for -drain, so that every busy keep-alive
// client leaves after a complete response and reconnects (to the new worker), and only then
// calls Shutdown with a 10 s deadline. Shutdown alone — or SetKeepAlivesEnabled(false),
// which closes idle connections at once — races with clients that send on an idle
// keep-alive connection as it is closed: about one failed request per busy connection.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func listeners() ([]net.Listener, []string) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		log.Fatalf("LISTEN_PID=%q is not my pid %d", os.Getenv("LISTEN_PID"), os.Getpid())
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		log.Fatalf("LISTEN_FDS=%q", os.Getenv("LISTEN_FDS"))
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	var ls []net.Listener
	for i := 0; i < n; i++ {
		name := "unknown"
		if i < len(names) {
			name = names[i]
		}
		f := os.NewFile(uintptr(3+i), name)
		l, err := net.FileListener(f)
		if err != nil {
			log.Fatalf("fd %d: %v", 3+i, err)
		}
		f.Close()
		ls = append(ls, l)
	}
	return ls, names
}

func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Printf("notify: %v", err)
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}

func main() {
	drain := flag.Duration("drain", 200*time.Millisecond, "keep-alive off this long before Shutdown")
	flag.Parse()
	// Catch the stop signals before READY=1: a SIGTERM right after it must mean a graceful
	// stop, not Go's default death.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	ls, names := listeners()
	pid := os.Getpid()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d\n", pid)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d\nLISTEN_PID=%s\nLISTEN_FDS=%s\nLISTEN_FDNAMES=%s\nnames=%d\n", pid,
			os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"), len(names))
	})
	var draining int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if atomic.LoadInt32(&draining) != 0 {
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: handler}
	for _, l := range ls {
		go srv.Serve(l)
	}
	notify("READY=1")
	<-sig
	atomic.StoreInt32(&draining, 1)
	time.Sleep(*drain)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Printf("shutdown: %v", err)
		os.Exit(1)
	}
}
