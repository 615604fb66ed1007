# chatd's everyday commands. `make test` is what CI runs (.ci/run).
# Every tool comes from go.mod's tool directives: nothing to install globally.

GO ?= go

.PHONY: all run build generate lint check-gen test test-short fuzz clean

all: test

## run: start chatd on localhost:50051
run:
	$(GO) run ./cmd/chatd

## build: build chatd and chatctl into bin/
build:
	$(GO) build -o bin/ ./cmd/chatd ./cmd/chatctl

## generate: regenerate gen/ from proto/
generate:
	$(GO) tool buf generate

## lint: gofmt, go vet and buf lint
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool buf lint

## check-gen: fail if gen/ does not match what proto/ generates
check-gen:
	./scripts/check-gen.sh

## test: every check and every test, with the race detector
test: lint check-gen
	$(GO) test -race -count=1 -timeout 20m ./...

## test-short: the tests alone, without lint and generation checks
test-short:
	$(GO) test -race ./...

## fuzz: run each fuzz target for a while (FUZZTIME=30s by default)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./server -run '^$$' -fuzz '^FuzzCheckUsername$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzCleanText$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin/

help:
	@grep -E '^## ' Makefile | sed 's/^## /  /'
