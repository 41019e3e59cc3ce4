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

# test is everything CI runs: vet, the whole suite under the race detector,
# then every fuzz target for a short, bounded time (FUZZTIME_CI each).
FUZZTIME_CI ?= 8s
test: tools vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME_CI)

demo:
	$(GO) run ./cmd/seal demo

# Fuzzing with go test -fuzz. `go test ./...` (CI) runs only the seed corpora
# and the crashers kept under testdata/fuzz/; `make fuzz` runs every target
# for FUZZTIME, one after another (go test fuzzes one target per run), and
# `make fuzz-long` for FUZZTIME_LONG each. The corpus grown while fuzzing
# stays in Go's cache (`go env GOCACHE`/fuzz), never in the tree; copy
# a crasher's testdata/fuzz/FuzzX/<id> file in only with its fix.
# Go minimizes every input that finds new coverage, for up to a minute each:
# in a 20 s run that is all the run does, so `fuzz` does not minimize
# (FUZZMINIMIZETIME=0s; a crasher is still written, unminimized).
FUZZTIME ?= 20s
FUZZTIME_LONG ?= 10m
FUZZMINIMIZETIME ?= 0s
FUZZ_TARGETS = \
	pkg/index:FuzzMerge \
	pkg/index:FuzzDescribe \
	pkg/attestation:FuzzParseStatement \
	pkg/attestation:FuzzParseBuildKitAttestation \
	pkg/attestation:FuzzConvertV02ToV1 \
	pkg/policy:FuzzParse \
	pkg/signing:FuzzParseBundleReferrer \
	pkg/signing:FuzzParseBundle \
	pkg/signing:FuzzParseLegacyManifest \
	pkg/signing:FuzzParseLegacyLayer \
	pkg/oci:FuzzParseReference \
	internal/registry:FuzzFastReadPaths

.PHONY: fuzz fuzz-long
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) ./$$pkg/; \
	done

fuzz-long:
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME_LONG) FUZZMINIMIZETIME=10s

# Benchmarks against the peer tools on this machine (bench/*/README.md):
# seal verify / sign / copy as real processes against cosign, regctl and
# crane loops, then the library's batch verification. A few minutes.
.PHONY: bench
bench:
	$(GO) run ./bench/verify
	$(GO) run ./bench/sign
	$(GO) run ./bench/copy
	$(GO) test ./pkg/verify -run '^$$' -bench VerifyAll100 -benchtime 3x

# The release flow through fault-injecting proxies (internal/soak). `go test`
# (CI) runs 20 iterations and verifies 200 images; `make soak` runs
# SOAK_ITERATIONS at SOAK_RATE % faults seeded with SOAK_SEED, and
# `make load` verifies LOAD_IMAGES images with 32 workers. Both print their
# figures (faults by kind, recoveries, clean failures, inconsistencies;
# time, heap and peak RSS).
SOAK_ITERATIONS ?= 200
SOAK_RATE ?= 10
SOAK_SEED ?= 8
LOAD_IMAGES ?= 1000

.PHONY: soak load
soak:
	SEAL_SOAK_ITERATIONS=$(SOAK_ITERATIONS) SEAL_SOAK_RATE_PERCENT=$(SOAK_RATE) SEAL_SOAK_SEED=$(SOAK_SEED) \
		$(GO) test -count=1 -v -timeout 60m -run '^TestSoakReleaseFlow$$' ./internal/soak/

load:
	SEAL_LOAD_IMAGES=$(LOAD_IMAGES) $(GO) test -count=1 -v -timeout 60m -run '^TestLoadVerifyAll$$' ./internal/soak/
