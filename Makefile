# push-gateway build, test and benchmark targets. Only Go (and git, for the
# version stamp) is needed; `make test` also wants gcc for the race detector.

GO        ?= go
BIN       ?= push-gateway
PKG       := github.com/push-gateway/push-gateway
VERSION   ?= $(shell cat VERSION)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# The build date is the last commit's, so that two builds of one commit match.
BUILD_DATE ?= $(shell git log -1 --format=%cd --date=format:%Y%m%d-%H:%M:%S 2>/dev/null || echo unknown)
VPKG      := github.com/prometheus/common/version
LDFLAGS   := -s -w -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) \
             -X $(VPKG).Branch=$(BRANCH) -X $(VPKG).BuildUser=push-gateway \
             -X $(VPKG).BuildDate=$(BUILD_DATE)
# Build tags, if any (the daemon needs none: it does not link net/http, so
# nethttpomithttp2 and the like change nothing).
TAGS      ?=
BUILDFLAGS := -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)"

# Release builds (make cross, deb, ipk) go to DIST. Their file times are the
# last commit's, so that two builds of one commit are byte for byte the same.
DIST ?= dist
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
CROSS_TARGETS := linux-amd64 linux-arm64 linux-armv7 linux-armv6 linux-mips \
                 linux-mipsle linux-riscv64
# Debian architecture = cross target.
DEB_ARCHS := amd64=linux-amd64 arm64=linux-arm64 armhf=linux-armv7 riscv64=linux-riscv64
# OpenWrt architecture = cross target.
IPK_ARCHS := aarch64_generic=linux-arm64 arm_cortex-a7_neon-vfpv4=linux-armv7 \
             mips_24kc=linux-mips mipsel_24kc=linux-mipsle
RELEASE_ENV := GO="$(GO)" VERSION="$(VERSION)" TAGS="$(TAGS)" LDFLAGS="$(LDFLAGS)" \
               DIST="$(DIST)" SOURCE_DATE_EPOCH="$(SOURCE_DATE_EPOCH)" REVISION="$(REVISION)"

SOCKET ?= $(CURDIR)/push-gateway.sock
ADDR   ?= localhost:9091

.PHONY: all build run test test-short vet fmt bench clean cross deb ipk

all: vet test build

build:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN) ./cmd/push-gateway

run: build
	./$(BIN) --ingest.socket=$(SOCKET) --web.listen-address=$(ADDR)

# The README's test command.
test:
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

# Side by side with the Prometheus Pushgateway and statsd_exporter (see
# BENCHMARKS.md). Wants wrk and prometheus-pushgateway from Debian
# (apt-get install -y prometheus-pushgateway wrk); a missing one is left out.
# statsd_exporter goes into .bench/bin. Shorter runs: BENCH_FLAGS='-churn-duration=3s'.
BENCH_DIR   := $(CURDIR)/.bench
BENCH_FLAGS ?=
.PHONY: bench-compare
bench-compare: build
	@mkdir -p $(BENCH_DIR)/bin
	GOBIN=$(BENCH_DIR)/bin $(GO) install github.com/prometheus/statsd_exporter@latest || \
		echo "bench-compare: statsd_exporter not installed, its column is left out"
	$(GO) run ./scripts/bench -ours ./$(BIN) \
		-pushgateway "$$(command -v prometheus-pushgateway || true)" \
		-statsd $(BENCH_DIR)/bin/statsd_exporter -out $(BENCH_DIR)/compare.md $(BENCH_FLAGS)

# Static, stripped, version-stamped binaries and .tar.gz archives for every
# target in CROSS_TARGETS, and DIST/SHA256SUMS.
cross:
	$(RELEASE_ENV) sh scripts/cross.sh $(CROSS_TARGETS)
	sh scripts/sums.sh $(DIST)

# Debian packages (dpkg-deb) of the cross-built binaries.
deb: cross
	@for a in $(DEB_ARCHS); do \
		$(RELEASE_ENV) sh scripts/deb.sh $(DIST)/push-gateway-$(VERSION).$${a#*=}/push-gateway $${a%%=*} $(VERSION) $(DIST) || exit 1; \
	done
	sh scripts/sums.sh $(DIST)

# OpenWrt packages (.ipk) of the cross-built binaries, without the SDK.
ipk: cross
	@for a in $(IPK_ARCHS); do \
		$(RELEASE_ENV) sh scripts/ipk.sh $(DIST)/push-gateway-$(VERSION).$${a#*=}/push-gateway $${a%%=*} $(VERSION) $(DIST) || exit 1; \
	done
	sh scripts/sums.sh $(DIST)

# A bounded storm of hostile clients (flood of new series, endless line,
# idle and slow connections, oversized HTTP pushes) against the built binary
# while valid pushers and scrapers keep working; prints peak RSS, drift,
# valid samples lost and failed scrapes (see BENCHMARKS.md, "Storm").
# Fails if a valid sample was lost or a scrape failed.
# Shorter runs: STORM_FLAGS='-duration=10s'; all flags: go run ./scripts/storm -h.
STORM_FLAGS ?=
.PHONY: storm
storm: build
	$(GO) run ./scripts/storm -bin ./$(BIN) $(STORM_FLAGS)

# The attacks of issue 12, one after another, each alone against a fresh
# daemon (about 3 minutes; see BENCHMARKS.md, "Storm: issue 12 attacks").
# Further daemon flags: STORM_FLAGS='-extra=--web.max-connections=64'.
.PHONY: storm-attacks
storm-attacks: build
	$(GO) build -o dist/storm ./scripts/storm
	for a in tcp-flood slow-scrape stall-push idle-dialers; do \
		./dist/storm -bin ./$(BIN) -attack=$$a $(STORM_FLAGS) || exit 1; \
	done

clean:
	rm -f $(BIN) $(SOCKET)
	rm -rf dist
