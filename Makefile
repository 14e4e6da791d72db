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
# nethttpomithttp2 leaves net/http's HTTP/2 code out: Prometheus scrapes
# over HTTP/1.1 and the binary is smaller.
TAGS      := nethttpomithttp2
BUILDFLAGS := -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)"

SOCKET ?= $(CURDIR)/push-gateway.sock
ADDR   ?= localhost:9091

.PHONY: all build run test test-short vet fmt bench clean

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

clean:
	rm -f $(BIN) $(SOCKET)
	rm -rf dist
