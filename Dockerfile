# Build: docker build -t bestofn .
# Run:   docker run -p 8080:8080 -v /path/to/models:/models bestofn   (serves /models/model.gguf; override with
#        serve --model ... --reward-model ...). The image ships the project's small test reward model.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -o /out/bestofn ./cmd/bestofn

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bestofn /usr/local/bin/bestofn
COPY --from=build /src/reward/testdata/tiny-rm /usr/share/bestofn/tiny-rm
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bestofn"]
CMD ["serve", "--addr", ":8080", "--model", "/models/model.gguf", "--reward-model", "/usr/share/bestofn/tiny-rm"]
