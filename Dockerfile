# The bestofn image: the server with ONNX Runtime, serving the default models (embedded in the binary, package
# defaults) with nothing mounted, as a non-root user, with a health check.
#
#   scripts/build-image.sh [TAG]          # the way to build it: assembles the context (the repo and ONNX
#                                         # Runtime) and runs docker build
#   docker run --rm -p 8080:8080 bestofn  # serves llama-gpt4, llama-gpt4:r1, llama-gpt4:ab on :8080
#   docker run --rm -p 8080:8080 bestofn serve --remote http://vllm:8000/v1 --remote-model llama-gpt4
#
# The base images are the public golang and debian ones; without a registry, scripts/make-base-images.sh
# makes images of the same names with debootstrap. Debian's docker.io (20.10) builds this file with its
# classic builder.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/bestofn ./cmd/bestofn
# `bestofn defaults` writes the embedded default models out at build time where the server looks for them
# (XDG_CACHE_HOME below): the server then finds them complete and writes nothing, so a read-only root
# filesystem is fine.
RUN set -e; \
    ort=.cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
    test -f "$ort" || { echo "Dockerfile: $ort is missing: build with scripts/build-image.sh (or npm install as .ci/run does)"; exit 1; }; \
    install -D -m 0644 "$ort" /out/opt/lib/libonnxruntime.so.1; \
    XDG_CACHE_HOME=/out/opt/cache /out/bestofn defaults

FROM ${RUNTIME_IMAGE}
RUN echo 'bestofn:x:10001:10001:bestofn:/var/lib/bestofn:/usr/sbin/nologin' >>/etc/passwd && \
    echo 'bestofn:x:10001:' >>/etc/group && \
    mkdir -p /var/lib/bestofn && chown 10001:10001 /var/lib/bestofn
COPY --from=build /out/bestofn /usr/local/bin/bestofn
COPY --from=build /out/opt /opt/bestofn
ENV BESTOFN_ORT_LIB=/opt/bestofn/lib/libonnxruntime.so.1 \
    BESTOFN_DATA_DIR=/var/lib/bestofn \
    BESTOFN_HEALTH_URL=http://127.0.0.1:8080/readyz \
    XDG_CACHE_HOME=/opt/bestofn/cache
WORKDIR /var/lib/bestofn
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/bestofn", "health", "-q"]
ENTRYPOINT ["/usr/local/bin/bestofn"]
CMD ["serve", "--addr", ":8080"]
