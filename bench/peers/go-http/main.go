// go-http: the Go net/http peer for graceful's benchmarks and the worker graceful-run's tests
// drive. It is deliberately the plain, idiomatic Go server: routes like graceful-server's,
// Server.Shutdown on SIGTERM/SIGINT with a timeout, nothing else. Only the standard library,
// so it builds with Debian's golang-go and GO111MODULE=off.
//
// Usage:
//
//	go-http [-listen ADDR] [-listen-fds] [-shutdown-timeout D] [-pid-file PATH]
//
// With -listen-fds the listeners come from systemd socket activation (sd_listen_fds(3)):
// LISTEN_PID must equal our pid and LISTEN_FDS counts the fds starting at 3. When NOTIFY_SOCKET
// is set, READY=1 is sent once serving and STOPPING=1 when shutdown begins (sd_notify(3)).
//
// Exit status: 0 after a clean Shutdown, 1 if Shutdown hit its timeout or serving failed,
// 2 for bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// body is the fixed response of GET /, the same bytes nginx's config and graceful-server send,
// so the throughput comparison moves the same payload.
const body = "Hello, World!\n"

// sdListenFdsStart is SD_LISTEN_FDS_START from <systemd/sd-daemon.h>: the first passed fd.
const sdListenFdsStart = 3

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("go-http", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "`ADDR:PORT` to listen on (port 0 picks a free one)")
	listenFds := fs.Bool("listen-fds", false, "take the listeners from systemd socket activation (LISTEN_FDS/LISTEN_PID) instead of -listen")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long Shutdown waits for in-flight requests before giving up")
	pidFile := fs.String("pid-file", "", "write our pid to `PATH`")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "go-http: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	// Catch the stop signals before anyone can learn we are up (READY=1, the port answering):
	// a supervisor's SIGTERM right after READY=1 must mean Shutdown, not the default death.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	var listeners []net.Listener
	var err error
	if *listenFds {
		listeners, err = activationListeners()
	} else {
		var ln net.Listener
		ln, err = net.Listen("tcp", *listen)
		listeners = []net.Listener{ln}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-http: %v\n", err)
		return 1
	}
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "go-http: %v\n", err)
			return 1
		}
	}

	srv := &http.Server{Handler: routes()}
	serveErr := make(chan error, len(listeners))
	for _, ln := range listeners {
		fmt.Fprintf(os.Stderr, "go-http: pid %d listening on %s\n", os.Getpid(), ln.Addr())
		go func(ln net.Listener) { serveErr <- srv.Serve(ln) }(ln)
	}
	notify("READY=1")

	select {
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "go-http: pid %d got %v, shutting down\n", os.Getpid(), sig)
	case err := <-serveErr:
		fmt.Fprintf(os.Stderr, "go-http: serve: %v\n", err)
		return 1
	}
	notify("STOPPING=1")
	ctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "go-http: shutdown: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "go-http: pid %d exited cleanly\n", os.Getpid())
	return 0
}

// routes serves the subset of graceful-server's routes the benchmarks use.
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
	// GET /slow?ms=N answers after N ms; the goroutine sleeps, no thread is held.
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
	// GET /pid tells tests which worker answered (graceful-run swaps workers).
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d\n", os.Getpid())
	})
	return mux
}

// activationListeners implements the receiving side of sd_listen_fds(3) by hand: the fds are
// ours only if LISTEN_PID names this process (the variables may have been inherited by
// accident). Like sd_listen_fds(1) the variables are then unset so our children do not
// mistake the fds for theirs.
func activationListeners() ([]net.Listener, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, fmt.Errorf("-listen-fds: LISTEN_PID=%q is not our pid %d", os.Getenv("LISTEN_PID"), os.Getpid())
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("-listen-fds: LISTEN_FDS=%q, want a count >= 1", os.Getenv("LISTEN_FDS"))
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	var lns []net.Listener
	for i := 0; i < n; i++ {
		fd := sdListenFdsStart + i
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		// The fd arrives without FD_CLOEXEC (it crossed an exec); net.FileListener dups it
		// with CLOEXEC, and closing the original leaves exactly one fd per listener.
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), name)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("-listen-fds: fd %d (%s) is not a listening socket: %v", fd, name, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

var notifyOnce sync.Mutex

// notify sends one sd_notify(3) state line to $NOTIFY_SOCKET, if set. A leading '@' means an
// abstract socket; Go's net package maps it to the leading NUL byte itself.
func notify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	notifyOnce.Lock()
	defer notifyOnce.Unlock()
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-http: NOTIFY_SOCKET %s: %v\n", path, err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(os.Stderr, "go-http: NOTIFY_SOCKET %s: %v\n", path, err)
	}
}
