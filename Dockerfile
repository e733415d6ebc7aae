# The bestofn image: the server with ONNX Runtime, serving the default models with nothing mounted, as a
# non-root user, with a health check.
#
#   scripts/build-image.sh [TAG]          # the way to build it: assembles the context (the repo, ONNX Runtime,
#                                         # the default generator from ../shared) and runs docker build
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
# /opt/bestofn mirrors a checkout with ../shared beside it, so that `serve` with no flags finds its defaults
# (../shared/models/stories260K/stories260K.gguf and reward/testdata/tiny-rm) from /opt/bestofn/app.
RUN set -e; \
    ort=.cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
    test -f "$ort" || { echo "Dockerfile: $ort is missing: build with scripts/build-image.sh (or npm install as .ci/run does)"; exit 1; }; \
    install -D -m 0644 "$ort" /out/opt/lib/libonnxruntime.so.1; \
    mkdir -p /out/opt/app/reward/testdata /out/opt/shared/models; \
    cp -r reward/testdata/tiny-rm /out/opt/app/reward/testdata/; \
    if [ -d _shared/models/stories260K ]; then cp -r _shared/models/stories260K /out/opt/shared/models/; \
    else echo "Dockerfile: no _shared/models/stories260K in the context: serve needs --model (or a mount) until the defaults are embedded"; fi

FROM ${RUNTIME_IMAGE}
RUN echo 'bestofn:x:10001:10001:bestofn:/var/lib/bestofn:/usr/sbin/nologin' >>/etc/passwd && \
    echo 'bestofn:x:10001:' >>/etc/group && \
    mkdir -p /var/lib/bestofn && chown 10001:10001 /var/lib/bestofn
COPY --from=build /out/bestofn /usr/local/bin/bestofn
COPY --from=build /out/opt /opt/bestofn
ENV BESTOFN_ORT_LIB=/opt/bestofn/lib/libonnxruntime.so.1 \
    BESTOFN_DATA_DIR=/var/lib/bestofn \
    BESTOFN_HEALTH_URL=http://127.0.0.1:8080/readyz
WORKDIR /opt/bestofn/app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/bestofn", "health", "-q"]
ENTRYPOINT ["/usr/local/bin/bestofn"]
CMD ["serve", "--addr", ":8080"]
