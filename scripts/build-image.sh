#!/usr/bin/env bash
# Builds the bestofn image (Dockerfile) from the repository, with ONNX Runtime (npm's onnxruntime-node, as
# .ci/run installs it, or $BESTOFN_ORT_LIB), and prints its size. The default models are embedded in the binary
# (defaults/): nothing from ../shared goes into the image. Makes the base images first
# (scripts/make-base-images.sh) when docker has none of that name.
#
# Usage: scripts/build-image.sh [TAG]     (default TAG: bestofn:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-bestofn:dev}
docker=${DOCKER:-docker}

for base in golang:1.26-bookworm debian:bookworm-slim; do
  if ! $docker image inspect "$base" >/dev/null 2>&1; then
    echo "build-image: no $base image; making the base images"
    scripts/make-base-images.sh
    break
  fi
done

ort=.cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
if [ ! -f "$ort" ]; then
  if [ -n "${BESTOFN_ORT_LIB:-}" ] && [ -f "$BESTOFN_ORT_LIB" ]; then
    install -D -m 0644 "$BESTOFN_ORT_LIB" "$ort"
  else
    npm install --silent --no-audit --no-fund --prefix .cache/ort --ignore-scripts onnxruntime-node@1.30.0
  fi
fi

# The context: the repository's files (tracked and untracked, not ignored) and ONNX Runtime.
list=$(mktemp)
trap 'rm -f "$list"' EXIT
git ls-files -co --exclude-standard -z >"$list"
printf '%s\0' "$ort" >>"$list"
start=$(date +%s)
tar -c --null -T "$list" | DOCKER_BUILDKIT=0 $docker build -t "$tag" -f Dockerfile -
size=$($docker image inspect -f '{{.Size}}' "$tag")
echo "build-image: $tag built in $(($(date +%s) - start)) s; size $(awk -v s="$size" 'BEGIN{printf "%.0f MB (%d bytes)", s/1e6, s}')"
