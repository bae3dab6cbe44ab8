// idle-conns: opens N keep-alive HTTP/1.1 connections to one server, sends one GET on each
// (so every connection is a real, served keep-alive connection, not a half-open socket in
// the accept queue), then holds them idle so the harness can read the server's RSS.
//
// Usage:
//
//	idle-conns -addr 127.0.0.1:PORT [-n 10000] [-parallel 100] [-path /] [-hold 60s]
//
// Like a real keep-alive client (a browser, Go's http.Transport), it closes a connection as
// soon as the server closes it (FIN), so a server that lingers on close is not kept waiting.
// Prints "open N" on stdout once N connections are open and answered, then
// "still-open K" when it is told to stop (SIGTERM/SIGINT) or -hold passes: K counts the
// connections the server had not closed meanwhile. Exit status 1 if fewer than N opened.
// Needs an fd limit above N (the harness raises ulimit -n).
//
// For the exit-time benchmark, -keep-open is the client that reads its response and then
// keeps its socket open: a Connection: close response is accepted, and a FIN from the server
// is not answered with our close. It prints "answered-at-ns T" (Unix ns, when the last
// response was read whole) before "open N". With -pipeline-after-fin it also waits for the
// server's FIN on each connection and then sends the request once more (a pipelining client
// that had not seen the close yet), printing "pipelined-after-fin K"; "reset R" at the end
// counts the connections that got a RST (their TCP state went to CLOSE).
package main

import (
	"bufio"
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
	"unsafe"
)

func main() {
	addr := flag.String("addr", "", "server `ADDR:PORT` (loopback)")
	n := flag.Int("n", 10000, "connections to open")
	parallel := flag.Int("parallel", 100, "connections being opened at once")
	path := flag.String("path", "/", "request path sent once on each connection")
	hold := flag.Duration("hold", 60*time.Second, "how long to hold the connections at most")
	flag.BoolVar(&keepOpen, "keep-open", false, "accept Connection: close and never close a connection before the end")
	pipeline := flag.Bool("pipeline-after-fin", false, "with -keep-open: after the server's FIN, send the request again")
	flag.Parse()
	if *addr == "" || *n < 1 || *parallel < 1 {
		fmt.Fprintln(os.Stderr, "usage: idle-conns -addr ADDR:PORT [-n N] [-parallel P] [-path /] [-hold D]")
		os.Exit(2)
	}

	conns := make([]net.Conn, *n)
	var failed int
	var firstErr error
	var mu sync.Mutex
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", *path, *addr)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			c, err := open(*addr, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	// One blocked reader per connection: any byte, EOF or error from an idle keep-alive
	// connection means the server is done with it.
	var live int64 = int64(*n - failed)
	for _, c := range conns {
		if c == nil {
			continue
		}
		go func(c net.Conn) {
			var b [1]byte
			c.Read(b[:])
			if !keepOpen {
				c.Close()
			} else if *pipeline {
				if _, err := io.WriteString(c, req); err == nil {
					atomic.AddInt64(&pipelined, 1)
				}
			}
			atomic.AddInt64(&live, -1)
		}(c)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "idle-conns: %d of %d connections failed, first: %v\n", failed, *n, firstErr)
	}
	if keepOpen {
		fmt.Printf("answered-at-ns %d\n", atomic.LoadInt64(&lastAnswer))
	}
	fmt.Printf("open %d\n", *n-failed)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sigs:
	case <-time.After(*hold):
	}
	still := atomic.LoadInt64(&live)
	fmt.Printf("still-open %d\n", still)
	if keepOpen {
		if *pipeline {
			fmt.Printf("pipelined-after-fin %d\n", atomic.LoadInt64(&pipelined))
		}
		resets := 0
		for _, c := range conns {
			if c != nil && wasReset(c) {
				resets++
			}
		}
		fmt.Printf("reset %d\n", resets)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

var (
	keepOpen   bool
	lastAnswer int64 // Unix ns of the last response read whole
	pipelined  int64
)

// wasReset: the connection's TCP state is CLOSE, where only a RST takes a socket whose peer
// closed first (CLOSE_WAIT) while we keep ours open.
func wasReset(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	reset := false
	rc.Control(func(fd uintptr) {
		// getsockopt(TCP_INFO) by hand (Go 1.19's syscall has no wrapper): tcpi_state is
		// the struct's first byte.
		var info [104]byte
		size := uint32(len(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		reset = errno == 0 && info[0] == 7 // TCP_CLOSE
	})
	return reset
}

// open connects, sends one request and reads the whole response, leaving the connection idle.
func open(addr, req string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for t := time.Now().UnixNano(); ; {
		old := atomic.LoadInt64(&lastAnswer)
		if t <= old || atomic.CompareAndSwapInt64(&lastAnswer, old, t) {
			break
		}
	}
	if resp.Close && !keepOpen {
		c.Close()
		return nil, fmt.Errorf("server answered with Connection: close")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
