#!/usr/bin/env bash
# Installs what is missing, builds (Release) and runs graceful-server with its defaults.
# Extra arguments go to graceful-server (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGRACEFUL_BUILD_TESTS=OFF >/dev/null
cmake --build build-release --target graceful-server
exec build-release/bin/graceful-server "$@"
