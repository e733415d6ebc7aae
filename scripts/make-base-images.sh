#!/usr/bin/env bash
# Makes the two base images the Dockerfile names, without any image registry, as an air-gapped site would:
# a debootstrap of Debian bookworm from this machine's apt mirror (the first bookworm entry of
# /etc/apt/sources.list*, or $MIRROR).
#
#   debian:bookworm-slim   minbase + ca-certificates                      (the runtime stage)
#   golang:1.26-bookworm   minbase + gcc libc6-dev git ca-certificates,   (the build stage)
#                          this machine's Go toolchain (go env GOROOT) in /usr/local/go, its CA bundle, and
#                          its Go proxy settings (GOPROXY, GOFLAGS, GOSUMDB, GONOSUMDB, GOPRIVATE from go env)
#
# Usage: sudo scripts/make-base-images.sh            (needs debootstrap, docker and a running dockerd)
# Env:   MIRROR=http://deb.debian.org/debian  SUITE=bookworm  RUNTIME_TAG=debian:bookworm-slim  GO_TAG=golang:1.26-bookworm
set -euo pipefail

SUITE=${SUITE:-bookworm}
RUNTIME_TAG=${RUNTIME_TAG:-debian:bookworm-slim}
GO_TAG=${GO_TAG:-golang:1.26-bookworm}

mirror_from_sources() {
  local f
  # deb822 sources (URIs: / Suites:) first, then one-line sources.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      /^URIs:/   { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri != "") { print uri; exit } }
      /^$/       { uri = "" }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /\[.*\]/ && $3 == suite { print $2; exit }
                           $1 == "deb" && $0 ~ /\[.*\]/ && $4 == suite { print $3; exit }' "$f"
  done
}
MIRROR=${MIRROR:-$(mirror_from_sources | head -n1)}
[ -n "$MIRROR" ] || { echo "make-base-images: no $SUITE mirror in /etc/apt/sources.list*; set MIRROR" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "make-base-images: apt-get install debootstrap" >&2; exit 1; }
docker version >/dev/null || { echo "make-base-images: docker is not running (apt-get install docker.io; dockerd &)" >&2; exit 1; }
GOROOT=$(go env GOROOT)
echo "make-base-images: $SUITE from $MIRROR; Go $(go env GOVERSION) from $GOROOT"

work=$(mktemp -d /tmp/bestofn-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cache"

# bootstrap DIR PACKAGES: a minbase system with the extra packages, cleaned of apt lists, caches, docs.
bootstrap() {
  local dir=$1 include=$2
  debootstrap --variant=minbase --include="$include" --cache-dir="$work/cache" "$SUITE" "$dir" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # The image's apt reads the same mirror.
  printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$dir/etc/apt/sources.list"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/*.log "$dir"/tmp/*
}

# import DIR TAG CHANGES...: the directory as an image.
import() {
  local dir=$1 tag=$2
  shift 2
  local args=(--change 'LABEL org.bestofn.base="debootstrap '"$SUITE $MIRROR"'"')
  for c in "$@"; do args+=(--change "$c"); done
  tar --numeric-owner -C "$dir" -c . | docker import "${args[@]}" - "$tag" >/dev/null
  echo "make-base-images: $tag $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bootstrap "$work/runtime" ca-certificates
import "$work/runtime" "$RUNTIME_TAG" "ENV PATH=$path" 'CMD ["bash"]'

bootstrap "$work/go" ca-certificates,gcc,libc6-dev,git
mkdir -p "$work/go/usr/local"
cp -a "$GOROOT" "$work/go/usr/local/go"
cp /etc/ssl/certs/ca-certificates.crt "$work/go/etc/ssl/certs/ca-certificates.crt" # trust what this machine trusts
envs=("ENV PATH=/go/bin:/usr/local/go/bin:$path" "ENV GOPATH=/go" "ENV GOTOOLCHAIN=local"
  "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
for v in GOPROXY GOFLAGS GOSUMDB GONOSUMDB GONOPROXY GOPRIVATE; do
  val=$(go env "$v")
  [ -n "$val" ] && envs+=("ENV $v=$val")
done
import "$work/go" "$GO_TAG" "${envs[@]}" 'WORKDIR /go' 'CMD ["bash"]'
