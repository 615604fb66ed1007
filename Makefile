# chatd's everyday commands. `make test` is what CI runs (.ci/run).
# Go tools come from tool directives: those that build and check chatd
# (buf, protoc-gen-go, staticcheck) from tools/go.mod, kept out of the
# product's go.mod; grpcurl and nats-server from go.mod; the page's tools from
# web/package-lock.json (npm ci); the browser tests' Chromium from Debian
# (scripts/install-chromium.sh, run by make test when it is missing).

GO ?= go
# TOOL runs a tool of tools/go.mod.
TOOL = $(GO) tool -modfile=tools/go.mod

.PHONY: all run build bench generate web web-deps browser lint check-gen check-breaking check-web test test-short fuzz clean

all: test

## run: start chatd on localhost:50051
run:
	$(GO) run ./cmd/chatd

## build: build chatd, chatctl and chatbench into bin/
build:
	$(GO) build -o bin/ ./cmd/chatd ./cmd/chatctl ./cmd/chatbench

## generate: regenerate gen/ (Go) and web/src/gen/ (TypeScript) from proto/
generate: web-deps
	$(TOOL) buf generate
	$(TOOL) buf generate --template buf.gen.web.yaml

## web-deps: install the page's pinned npm packages into web/node_modules
web-deps: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

## web: type-check the page and rebuild web/dist/app.js (commit it: chatd embeds it)
web: web-deps
	cd web && npm run typecheck && npm run build

## browser: install Debian's chromium for the browser tests, if missing
browser:
	./scripts/install-chromium.sh

## lint: gofmt, go vet, staticcheck, buf lint, and go.mod tidy
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(TOOL) staticcheck ./...
	$(TOOL) buf lint
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff

## check-gen: fail if gen/ or web/src/gen/ does not match what proto/ generates
check-gen: web-deps
	./scripts/check-gen.sh

## check-breaking: fail if proto/ breaks any committed version of the chat.v1 API (buf breaking)
check-breaking:
	./scripts/check-breaking.sh

## check-web: fail if the page does not type-check or web/dist/app.js is not a clean build of web/src
check-web: web-deps
	./scripts/check-web.sh

## test: every check and every test, with the race detector
test: lint check-gen check-breaking check-web browser
	CI=$${CI:-true} $(GO) test -race -count=1 -timeout 20m ./...

## test-short: the tests alone, without lint and generation checks
test-short:
	$(GO) test -race ./...

## bench: the Go benchmarks of the hub and the fan-out (compare runs with benchstat)
bench:
	$(GO) test ./server -run '^$$' -bench . -count 6

## fuzz: run each fuzz target for a while (FUZZTIME=30s by default)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./server -run '^$$' -fuzz '^FuzzCheckUsername$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzCleanText$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin/

help:
	@grep -E '^## ' Makefile | sed 's/^## /  /'
