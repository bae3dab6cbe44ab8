// grpc-go-greeter: the Greeter service (examples/grpc-greeter/greeter.proto) on grpc-go,
// restarted the way Go services are: SIGTERM -> GracefulStop (GOAWAY, in-flight calls
// finish), exit, then a new process binds the port again. bench/grpc.sh builds and runs it.
//
//   grpc-go-greeter -listen 127.0.0.1:50051
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	pb "greeterpb"
)

type server struct{}

func (server) SayHello(_ context.Context, r *pb.HelloRequest) (*pb.HelloReply, error) {
	return &pb.HelloReply{Message: "Hello " + r.Name, Pid: int32(os.Getpid())}, nil
}

func (server) SayHelloStream(r *pb.HelloStreamRequest, s pb.Greeter_SayHelloStreamServer) error {
	for i := uint32(0); i < r.Count; i++ {
		if err := s.Send(&pb.HelloReply{Message: "Hello " + r.Name, Pid: int32(os.Getpid()), Index: i}); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	addr := flag.String("listen", "127.0.0.1:50051", "address to listen on")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-go-greeter:", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	pb.RegisterGreeterServer(s, server{})
	fmt.Fprintf(os.Stderr, "grpc-go-greeter: listening on %s\n", l.Addr())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		s.GracefulStop()
	}()
	if err := s.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "grpc-go-greeter:", err)
		os.Exit(1)
	}
}
