// grpc-go-client: grpc-go's client (Debian golang-google-grpc-dev) calling the Greeter's
// unary SayHello in a closed loop on -c connections, every call with WaitForReady, until -d
// passes or SIGTERM/SIGINT arrives. Prints one summary line
//   calls N ok N failed N [CODE=n ...] pids P1,P2,...
// and exits 1 if any call failed (2 for bad flags).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "greeterpb"
)

func main() {
	target := flag.String("target", "127.0.0.1:50051", "server address")
	conns := flag.Int("c", 4, "connections (one ClientConn each)")
	dur := flag.Duration("d", 0, "how long to send calls; 0 = until SIGTERM/SIGINT")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call")
	flag.Parse()
	if *conns < 1 || *conns > 1000 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "grpc-go-client: bad flags")
		os.Exit(2)
	}
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		if *dur > 0 {
			select {
			case <-sigs:
			case <-time.After(*dur):
			}
		} else {
			<-sigs
		}
		close(stop)
	}()

	var mu sync.Mutex
	var calls, failed int
	codes := map[string]int{}
	pids := map[int32]bool{}
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		cc, err := grpc.Dial(*target, grpc.WithInsecure())
		if err != nil {
			fmt.Fprintln(os.Stderr, "grpc-go-client: dial:", err)
			os.Exit(1)
		}
		defer cc.Close()
		client := pb.NewGreeterClient(cc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				rep, err := client.SayHello(ctx, &pb.HelloRequest{Name: "go"}, grpc.WaitForReady(true))
				cancel()
				mu.Lock()
				calls++
				if err != nil {
					failed++
					codes[status.Code(err).String()]++
				} else if !pids[rep.Pid] {
					pids[rep.Pid] = true
					fmt.Printf("pid %d\n", rep.Pid) // progress: a new server process answered
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var cs, ps []string
	for k, v := range codes {
		cs = append(cs, fmt.Sprintf(" %s=%d", k, v))
	}
	sort.Strings(cs)
	for p := range pids {
		ps = append(ps, fmt.Sprint(p))
	}
	sort.Strings(ps)
	fmt.Printf("calls %d ok %d failed %d%s pids %s\n", calls, calls-failed, failed, strings.Join(cs, ""), strings.Join(ps, ","))
	if failed > 0 {
		os.Exit(1)
	}
}
