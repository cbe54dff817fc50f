# syntax=docker/dockerfile:1
#
# MoFang Live in a container: a static binary (CGO_ENABLED=0: the SQLite
# driver, modernc.org/sqlite, is pure Go) with the pages embedded, run as
# a non-root user on distroless. The pages' bundle is the committed one
# (cmd/mofang/web/dist; a Go test keeps it in step with its sources), so
# the build needs Go only.
#
#   docker build -t mofang .
#   docker run -p 8080:8080 -p 1935:1935 -v mofang-data:/data mofang
#
# compose.yaml runs it with MariaDB and Redis.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so a change of the code reuses their layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    test -f cmd/mofang/web/dist/index.html || { echo "cmd/mofang/web/dist is missing: run make web" >&2; exit 1; }; \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mofang ./cmd/mofang && \
    /out/mofang version && \
    mkdir -p /out/data && chown 65532:65532 /out/data

# A static wget for the health check (distroless has no shell or client).
FROM busybox:1.37-musl AS tools

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mofang /mofang
COPY --from=tools /bin/busybox /busybox
# The data folder: the SQLite database (when no --db is given), the
# generated secrets and the recordings. Owned by the nonroot user (65532).
COPY --from=build --chown=65532:65532 /out/data /data
ENV MOFANG_DATA_DIR=/data
VOLUME ["/data"]
USER 65532:65532
# HTTP (API, pages, HTTP-FLV, HLS, WHIP/WHEP, /metrics, /healthz), RTMP,
# RTSP over TCP, RTSP's RTP/RTCP over UDP, WebRTC media, SRT.
EXPOSE 8080/tcp 1935/tcp 8554/tcp 8000/udp 8001/udp 8189/udp 8890/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/mofang"]
CMD ["serve"]
