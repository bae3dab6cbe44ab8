#!/usr/bin/env bash
# podman as this project's test machines need it, in one place. A normal Docker or podman
# host needs none of this: `docker build -f deploy/Dockerfile .` pulls debian:12 itself.
#
#   tests/container/podman.sh bases                   make debian:12 and debian:12-slim locally
#   tests/container/podman.sh build TARGET TAG        build deploy/Dockerfile's TARGET as TAG
#   tests/container/podman.sh run ARGS...             podman run with this machine's flags
#   tests/container/podman.sh build-file FILE TAG     build another Containerfile (context: the repository)
#   tests/container/podman.sh check                   can a container run here? (exit 0 / 1)
#   tests/container/podman.sh ARGS...                 any other podman command (stop, kill, exec...)
#
# What these machines lack, and what this script does instead:
#   - No image registry is reachable: debian:12 is made with `debootstrap --variant=minbase
#     bookworm` from the Debian mirror apt is configured with (read from apt's sources now,
#     never written into the repository), imported with `podman import`, and tagged, so the
#     Dockerfile builds unmodified with --pull=never. debian:12-slim is the same rootfs with
#     documentation, man pages and locales removed and excluded from later installs, as the
#     official slim image does. The rootfs tarballs are kept in $GRACEFUL_CONTAINER_CACHE
#     (default /var/cache/graceful-container) and a tag that exists is never rebuilt.
#   - The kernel runs cgroup v1 (hybrid): runc works with it; crun (podman's first choice
#     where installed) refuses it, so the runtime is named: --runtime runc.
#   - The sandbox has no CAP_SYS_RESOURCE, so a container cannot be given more than the
#     caller's own hard limits (podman's defaults ask for more and fail with "error setting
#     rlimit"): --ulimit nofile and nproc are set explicitly to what podman itself has.
#   - Builds use --network host (no CNI bridge needed to reach the Debian mirror). Tests run
#     containers with --network none and drive them from inside their network namespace
#     (nsenter), so the image's fixed port 8080 collides with nothing on a shared machine.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${GRACEFUL_CONTAINER_CACHE:-/var/cache/graceful-container}"
nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=1048576
# podman lowers its own (and so conmon's and runc's) RLIMIT_NPROC to 32768 when it cannot
# raise it: a container asking for more is refused ("error setting rlimit type 6").
[ "$nproc" -gt 32768 ] && nproc=32768
ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
pm=(podman --runtime runc)

say() { echo "podman.sh: $*" >&2; }

# The first Debian bookworm mirror in apt's sources (deb822 .sources files or sources.list).
apt_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ && /Types:[^\n]*deb( |\n|$)/ {
             if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i+1) == "bookworm") { print $i; exit } }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  say "no Debian bookworm mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/"
  return 1
}

# Base images are stored under the name `FROM debian:12` means on Docker Hub, so short-name
# resolution finds them locally whatever registries.conf says.
hub() { case "$1" in */*) echo "$1" ;; *) echo "docker.io/library/$1" ;; esac; }
have_image() { "${pm[@]}" image exists "$(hub "$1")"; }

# Writes apt sources into a rootfs: the host's Debian entries (bookworm, -updates, -security),
# so the image installs the same package versions the host has.
write_sources() {
  local root="$1" mirror="$2" f
  rm -f "$root/etc/apt/sources.list"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -q 'bookworm' "$f" && cp "$f" "$root/etc/apt/sources.list.d/"
  done
  if ! ls "$root"/etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    grep -hE '^deb .*bookworm' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      >"$root/etc/apt/sources.list" || echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
  fi
  # The mirror may be a dated snapshot whose Release files are past Valid-Until.
  if apt-config dump 2>/dev/null | grep -q 'Acquire::Check-Valid-Until "false"'; then
    echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99graceful-snapshot"
  fi
}

# debootstrap once into $cache/NAME.tar; prints the tarball path.
rootfs_tar() {
  local name="$1" tar="$cache/$1.tar" mirror root
  if [ -s "$tar" ]; then echo "$tar"; return; fi
  mirror="$(apt_mirror)"
  mkdir -p "$cache"
  root="$(mktemp -d "$cache/$name.XXXXXX")"
  say "debootstrap --variant=minbase bookworm from $mirror (once; cached in $tar)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; rm -rf "$root"; return 1; }
  write_sources "$root" "$mirror"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/tmp/*
  tar -C "$root" --numeric-owner -cf "$tar.tmp" .
  rm -rf "$root" "$root.log"
  mv "$tar.tmp" "$tar"
  echo "$tar"
}

import() {  # TAG TARBALL [--change ...]
  local tag="$1" tar="$2"
  shift 2
  "${pm[@]}" import --quiet "$@" "$tar" "$(hub "$tag")" >/dev/null
  say "imported $(hub "$tag") from $tar"
}

bases() {
  have_image debian:12 && have_image debian:12-slim && return 0
  local tar slim root
  tar="$(rootfs_tar bookworm-minbase)"
  have_image debian:12 || import debian:12 "$tar" --change 'CMD ["bash"]'
  if ! have_image debian:12-slim; then
    slim="$cache/bookworm-minbase-slim.tar"
    if [ ! -s "$slim" ]; then
      root="$(mktemp -d "$cache/slim.XXXXXX")"
      tar -C "$root" -xf "$tar"
      # As the official slim image: no docs, man pages or locales, now or from later installs.
      cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
      find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
      rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/usr/share/lintian/*
      tar -C "$root" --numeric-owner -cf "$slim.tmp" .
      rm -rf "$root"
      mv "$slim.tmp" "$slim"
    fi
    import debian:12-slim "$slim" --change 'CMD ["bash"]'
  fi
}

case "${1:-}" in
  bases)
    bases ;;
  build)
    [ $# -ge 3 ] || { say "usage: build TARGET TAG"; exit 2; }
    bases
    target="$2" tag="$3"
    shift 3
    "${pm[@]}" build --pull=never --network host "${ulimits[@]}" -f "$repo/deploy/Dockerfile" \
      --target "$target" -t "$tag" "$@" "$repo" ;;
  run)
    shift
    "${pm[@]}" run "${ulimits[@]}" "$@" ;;
  build-file)
    [ $# -ge 3 ] || { say "usage: build-file CONTAINERFILE TAG"; exit 2; }
    bases
    file="$2" tag="$3"
    shift 3
    "${pm[@]}" build --pull=never --network host "${ulimits[@]}" -f "$file" -t "$tag" "$@" "$repo" ;;
  check)
    bases
    "${pm[@]}" run --rm --network none "${ulimits[@]}" debian:12-slim true ;;
  "" | -h | --help)
    sed -n '2,10p' "$0" ;;
  *)
    "${pm[@]}" "$@" ;;
esac
