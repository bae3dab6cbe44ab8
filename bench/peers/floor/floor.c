// floor: the simplest HTTP/1.1 server this machine can run, the floor graceful-server's
// throughput is measured against (bench/throughput.sh). Each worker is one thread with its own
// SO_REUSEPORT listener and one epoll instance; every complete request (bytes up to a blank
// line, "\r\n\r\n") is answered with the same fixed response. No parser, no allocation after
// start-up, no timeouts, no graceful anything: it shows what an HTTP stack costs on top of the
// kernel's socket work, not a server anyone should run.
//
// Usage: floor -listen 127.0.0.1:PORT [-workers N] [-close] [-pid-file PATH]
//   -workers N  threads, each with its own listener and epoll (default 1)
//   -close      every response says "Connection: close" and the connection is closed after it
//               (for the Connection: close benchmark; the request must have been read whole)
// Requests with a body are not supported (the benchmark sends GET). Exits on SIGTERM/SIGINT
// at once (default action). Exit 2 for bad usage, 1 if the listener cannot be opened.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

// The same 14-byte body nginx, go-http and graceful-server send for GET /.
static const char keep_alive_response[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, World!\n";
static const char close_response[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nConnection: close\r\n\r\n"
    "Hello, World!\n";

static struct sockaddr_in listen_addr;
static int close_mode;
// The position in "\r\n\r\n" each fd has matched so far (a request may straddle reads);
// indexed by fd, sized once at start-up from the fd limit.
static unsigned char* match;
static int max_fd;

static int open_listener(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, (struct sockaddr*)&listen_addr, sizeof listen_addr) < 0 || listen(fd, 4096) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void* worker(void* arg) {
  int lfd = (int)(long)arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  struct epoll_event events[256];
  char buf[16384];
  const char* resp = close_mode ? close_response : keep_alive_response;
  size_t resp_len = close_mode ? sizeof close_response - 1 : sizeof keep_alive_response - 1;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          if (c >= max_fd) { close(c); continue; }
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          match[c] = 0;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t got = read(fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        close(fd);  // also removes it from the epoll set
        continue;
      }
      // Count the complete requests in these bytes; answer them all in one write.
      unsigned m = match[fd];
      int complete = 0;
      for (ssize_t k = 0; k < got; ++k) {
        char ch = buf[k];
        if (ch == (m == 0 || m == 2 ? '\r' : '\n')) {
          if (++m == 4) { ++complete; m = 0; }
        } else {
          m = ch == '\r' ? 1 : 0;
        }
      }
      match[fd] = (unsigned char)m;
      if (complete == 0) continue;
      if (close_mode) complete = 1;
      // Pipelined requests: at most sizeof buf worth of responses in one write.
      char out[16384];
      size_t len = 0;
      for (int k = 0; k < complete && len + resp_len <= sizeof out; ++k) {
        memcpy(out + len, resp, resp_len);
        len += resp_len;
      }
      ssize_t w = write(fd, out, len);
      if (w < 0 || close_mode) close(fd);
    }
  }
  return NULL;
}

static int usage(void) {
  fprintf(stderr, "usage: floor -listen 127.0.0.1:PORT [-workers N] [-close] [-pid-file PATH]\n");
  return 2;
}

int main(int argc, char** argv) {
  const char* listen_arg = NULL;
  const char* pid_file = NULL;
  long workers = 1;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "-listen") && i + 1 < argc) listen_arg = argv[++i];
    else if (!strcmp(argv[i], "-workers") && i + 1 < argc) workers = strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "-pid-file") && i + 1 < argc) pid_file = argv[++i];
    else if (!strcmp(argv[i], "-close")) close_mode = 1;
    else return usage();
  }
  if (!listen_arg || workers < 1 || workers > 64) return usage();
  char host[64];
  const char* colon = strrchr(listen_arg, ':');
  if (!colon || (size_t)(colon - listen_arg) >= sizeof host) return usage();
  memcpy(host, listen_arg, (size_t)(colon - listen_arg));
  host[colon - listen_arg] = 0;
  listen_addr.sin_family = AF_INET;
  listen_addr.sin_port = htons((unsigned short)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &listen_addr.sin_addr) != 1) return usage();

  max_fd = (int)sysconf(_SC_OPEN_MAX);
  if (max_fd <= 0 || max_fd > (1 << 20)) max_fd = 1 << 20;
  match = calloc((size_t)max_fd, 1);
  if (!match) return 1;
  pthread_t t[64];
  for (long w = 0; w < workers; ++w) {
    int lfd = open_listener();
    if (lfd < 0) {
      perror("floor: listen");
      return 1;
    }
    // Port 0: the first listener's port for every worker (they share it through SO_REUSEPORT).
    socklen_t alen = sizeof listen_addr;
    if (w == 0) getsockname(lfd, (struct sockaddr*)&listen_addr, &alen);
    if (pthread_create(&t[w], NULL, worker, (void*)(long)lfd) != 0) return 1;
  }
  if (pid_file) {
    FILE* f = fopen(pid_file, "w");
    if (!f) { perror("floor: pid file"); return 1; }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
  }
  for (long w = 0; w < workers; ++w) pthread_join(t[w], NULL);
  return 0;
}
