#!/usr/bin/env bash
# Installs every Debian 12 package graceful needs to build, test and benchmark.
# Idempotent and non-interactive: packages already present are not touched, so a
# second run costs one dpkg query. Needs root (or sudo) only when something is missing.
set -euo pipefail

# Build and library dependencies.
pkgs=(
  build-essential cmake ninja-build pkg-config git
  libboost-dev            # Asio + Beast (header-only), Outcome
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libgoogle-perftools-dev google-perftools   # CPU profiler + google-pprof
  libsystemd-dev          # sd_notify, sd_listen_fds_with_names
  libunwind-dev
  binutils                # addr2line symbolises stack dumps
  libnghttp2-dev          # HTTP/2 framing, HPACK, flow control
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc   # graceful::grpc
  ccache
)
# Real clients and peers used by tests and benchmarks.
pkgs+=(
  curl wrk nghttp2-client nginx-light haproxy
  golang-go golang-github-cloudflare-tableflip-dev
  gnuplot-nox procps iproute2 lsof python3 python3-yaml
  jq                         # bench/restart.sh reads graceful-bench --json
  clang libclang-rt-14-dev   # libFuzzer target
  golang-golang-x-net-dev golang-google-grpc-dev golang-goprotobuf-dev  # Go h2c and grpc-go clients/peers
  podman runc debootstrap uidmap slirp4netns   # tests/container
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
