# seal — build, peer tools, tests, demo. `make test` is what CI runs (.ci/run).

GO ?= go
# The Go on the machine builds everything; no toolchain downloads.
export GOTOOLCHAIN ?= local
export GOFLAGS ?= -buildvcs=false
TEST_TIMEOUT ?= 20m

.PHONY: all build tools vet test demo

all: build

build:
	$(GO) build -o seal ./cmd/seal

# The pinned peer tools of internal/testenv/tools.txt, into .cache/tools/,
# through the same code the tests use to install them on demand.
tools:
	$(GO) run ./internal/testenv/cmd/installtools

vet:
	$(GO) vet ./...

test: tools vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

demo:
	$(GO) run ./cmd/seal demo
