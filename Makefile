# MoFang Live. `make run` starts the service on the embedded SQLite
# database; `make test` prepares the machine (.ci/setup.sh) and runs every
# test, against SQLite and a real MariaDB.

SHELL := /bin/bash
GO ?= go
BIN := bin/mofang
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

WEB := cmd/mofang/web

.PHONY: build web web-check run test bench vet fuzz clean

build: web
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/mofang

# The pages' bundle (mpegts.js and our code, built with esbuild), embedded
# in the binary. It is committed (cmd/mofang/web/dist), so `go build` and
# `go install` need no npm; after changing the pages, run `make web` and
# commit dist/ with them. npm ci runs again only when the lock file changes.
$(WEB)/node_modules/.installed: $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "installing nodejs and npm"; apt-get update -qq && apt-get install -y -qq nodejs npm; }
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

web: $(WEB)/node_modules/.installed
	cd $(WEB) && npm run build

# The rebuilt bundle must be the one in git (staged counts, so a change of
# the pages can be tested before its commit): CI fails on a stale dist/.
web-check: web
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		if ! git diff --quiet -- $(WEB)/dist || [ -n "$$(git ls-files --others --exclude-standard -- $(WEB)/dist)" ]; then \
			echo "$(WEB)/dist differs from its sources' build: commit (or stage) the rebuilt bundle:"; \
			git diff --stat -- $(WEB)/dist; git ls-files --others --exclude-standard -- $(WEB)/dist; exit 1; \
		fi; \
	fi

# Development server: anyone may top up their own coins to try gifts.
run: build
	./$(BIN) serve --allow-recharge

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# The allocation tests run without -race first (the race detector
# allocates on its own), then everything under -race.
test:
	@. ./.ci/setup.sh && $(MAKE) --no-print-directory web-check vet && \
		$(GO) test -count=1 -run 'Allocs' ./media/... ./rpc/... && \
		$(GO) test -race -count=1 -timeout 20m ./...

# Short fuzzing of every fuzz target (the seed corpora run in `make test`).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Load benchmarks: the API (needs wrk, installed here if missing), room
# events, the media fan-out, many rooms, LL-HLS and WebRTC. Servers run
# pinned to CPU 0, the load on CPU 1. NMS=DIR (a folder where `npm install
# node-media-server@2.7.4` ran) runs the same fan-out and rooms against
# Node-Media-Server in the same run and prints the ratios.
NMS ?=
bench: build
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	./$(BIN) bench rpc
	taskset -c 1 ./$(BIN) bench room
	taskset -c 1 ./$(BIN) bench fanout --go-publisher $(if $(NMS),--nms $(NMS))
	taskset -c 1 ./$(BIN) bench rooms $(if $(NMS),--nms $(NMS))
	taskset -c 1 ./$(BIN) bench hls
	taskset -c 1 ./$(BIN) bench webrtc

clean:
	rm -rf bin $(WEB)/node_modules
