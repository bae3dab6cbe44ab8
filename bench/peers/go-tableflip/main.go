// go-tableflip: go-http's server upgraded in place with cloudflare/tableflip, the way
// tableflip's own http example does it: SIGHUP starts a new copy of the binary that inherits
// the listener; once the new process calls Ready() the old one runs Server.Shutdown.
// SIGTERM/SIGINT stop the upgrader and shut down the same way.
//
// Usage:
//
//	go-tableflip [-listen ADDR] [-shutdown-timeout D] [-pid-file PATH]
//
// The pid file always names the current generation (tableflip rewrites it after Ready), which
// is what a deploy script sends the next SIGHUP to.
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

	"github.com/cloudflare/tableflip"
)

// body is the same fixed response go-http, nginx and graceful-server send for GET /.
const body = "Hello, World!\n"

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("go-tableflip", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "`ADDR:PORT` to listen on")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long the old generation's Shutdown waits for in-flight requests")
	pidFile := fs.String("pid-file", "", "`PATH` tableflip keeps the current generation's pid in")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "go-tableflip: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	prefix := fmt.Sprintf("go-tableflip: pid %d:", os.Getpid())

	upg, err := tableflip.New(tableflip.Options{PIDFile: *pidFile})
	if err != nil {
		fmt.Fprintln(os.Stderr, prefix, err)
		return 1
	}
	defer upg.Stop()

	// Subscribe before Ready: a SIGHUP/SIGTERM right after the pid file appears must not kill us.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				fmt.Fprintln(os.Stderr, prefix, "got", sig, "- stopping")
				upg.Stop()
				return
			}
			fmt.Fprintln(os.Stderr, prefix, "got SIGHUP - upgrading")
			if err := upg.Upgrade(); err != nil {
				fmt.Fprintln(os.Stderr, prefix, "upgrade failed:", err)
			}
		}
	}()

	// Listen must come before Ready: it returns the inherited listener in a new generation.
	ln, err := upg.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, prefix, "listen:", err)
		return 1
	}
	srv := &http.Server{Handler: routes()}
	go func() {
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, prefix, "serve:", err)
		}
	}()
	if err := upg.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, prefix, "ready:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, prefix, "listening on", ln.Addr(), "(ready)")
	<-upg.Exit()

	ctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, prefix, "shutdown:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, prefix, "exited cleanly")
	return 0
}

// routes is go-http's route set (GET /, /slow?ms=N, /healthz).
func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 600000 {
			http.Error(w, "ms must be an integer in [0, 600000]", http.StatusBadRequest)
			return
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "slept %d ms\n", ms)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux
}
