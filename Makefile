# roster — see README.md for what each target does.

GO        ?= go
VERSION   ?= 0.1.0
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILDDATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILDDATE)

# make chaos: seeds per randomized test, and the test name pattern.
CHAOS_SEEDS ?= 200
CHAOS_RUN   ?= Partition
# make bench: which benchmarks, and how long each runs.
BENCH     ?= .
BENCHTIME ?= 1x
# make fuzz: time per fuzz target.
FUZZTIME  ?= 30s

export GOFLAGS := -buildvcs=false

.PHONY: all build run cluster test fmt-check vet chaos bench bench-deps fuzz cover deps clean

all: build

deps:
	$(GO) mod download
	cd testdata/compat && $(GO) mod download

build: deps
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/roster ./cmd/roster

run: build
	./bin/roster agent -dev

cluster: build
	./bin/roster dev-cluster

test: deps fmt-check vet
	$(GO) test -race -count=1 -timeout 15m ./...
	cd testdata/compat && $(GO) test -race -count=1 -timeout 10m ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd testdata/compat && $(GO) vet ./...

chaos: deps
	ROSTER_CHAOS=$(CHAOS_SEEDS) $(GO) test -race -count=1 -timeout 120m -run '$(CHAOS_RUN)' -v ./... 2>&1 | tee chaos.log | grep -E '^(=== RUN|--- FAIL|FAIL|ok|PASS|.*seed)' || true
	@! grep -qE '^(--- FAIL|FAIL)' chaos.log

# Tools the benchmarks drive, as command:Debian-package; installed when missing.
BENCH_APT := dnsperf:dnsperf etcd:etcd-server

bench-deps:
	@missing=""; for cp in $(BENCH_APT); do command -v $${cp%%:*} >/dev/null 2>&1 || missing="$$missing $${cp#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing for the benchmarks"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

bench: build bench-deps
	ROSTER_BIN=$(CURDIR)/bin/roster $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -timeout 60m ./... | tee bench.txt

fuzz: deps
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
			echo "== $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

cover: deps
	$(GO) test -count=1 -coverprofile=cover.out ./...
	$(GO) tool cover -func=cover.out | tail -1

clean:
	rm -rf bin cover.out bench.txt chaos.log
