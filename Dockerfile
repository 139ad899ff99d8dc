# syntax=docker/dockerfile:1
# ChatTorrent in a container: the same static binary as deploy/build.sh, on an empty base.
#
#   docker build -t chattorrent --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse --short HEAD) .
#   docker buildx build --platform linux/arm64,linux/arm/v7,linux/arm/v6,linux/amd64 -t chattorrent .
#   docker run -d --name chattorrent --network host -v chattorrent:/data chattorrent
#
# --network host: mDNS (chattorrent.local) and WebRTC ICE need the host's LAN interfaces;
# behind Docker's NAT phones can neither resolve nor reach the box's peer.
# The container runs as UID 65532, so it listens on 8443 (HTTPS) and 8080 (HTTP redirect):
# with --network host, ports below 1024 would need root. See docs/OPERATIONS.md.

# The build runs on the builder's own platform and cross-compiles (no emulation needed).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Set by buildx for the platform being built: amd64, arm64, or arm with variant v6/v7.
ARG TARGETARCH
ARG TARGETVARIANT
ARG VERSION=unknown
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux GOARCH="$TARGETARCH" GOARM="${TARGETVARIANT#v}" \
    go build -buildvcs=false -trimpath \
      -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
      -o /out/chattorrent ./firmware \
 && mkdir -p /out/data

FROM scratch
# CA roots, in case the firmware ever makes an outgoing TLS connection.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/chattorrent /chattorrent
# The data dir belongs to the unprivileged user; a new named volume copies this ownership.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CHATTORRENT_DATA_DIR=/data \
    CHATTORRENT_HTTPS_ADDR=:8443 \
    CHATTORRENT_HTTP_ADDR=:8080
VOLUME ["/data"]
EXPOSE 8443/tcp 8080/tcp 5353/udp
# `chattorrent healthcheck` GETs https://127.0.0.1$CHATTORRENT_HTTPS_ADDR/healthz, trusting
# only the box's own CA from $CHATTORRENT_DATA_DIR, and exits non-zero on failure: a scratch
# image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/chattorrent", "healthcheck"]
ENTRYPOINT ["/chattorrent"]
CMD ["serve", "--data-dir", "/data", "--https-addr", ":8443", "--http-addr", ":8080"]
