# Calyptia Core self-hosted management plane.
SHELL := /usr/bin/env bash
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
# Packages of the main module; hack/tools is a module of its own.
PKGS := ./...
TEST_TIMEOUT ?= 45m

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build every binary into bin/.
	$(GO) build -o bin/ ./cmd/...

# Fuzz targets of the Fluent Bit config model, each run briefly by `make test`.
FUZZ_TARGETS := FuzzParseClassic FuzzParseYAML FuzzConvert
FUZZTIME ?= 5s

.PHONY: fuzz
fuzz: ## Run each Fluent Bit config fuzz target for FUZZTIME (default 5s).
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t"; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./pkg/fluentbit || exit 1; \
	done

.PHONY: test
test: lint verify-codegen fuzz ## Lint, verify generated code, then run every unit and integration test (needs PostgreSQL; started if stopped).
	hack/ensure-postgres.sh
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

.PHONY: bench
bench: ## Run the benchmarks (PostgreSQL store beside etcd3 and plain pgx) and print ratios.
	hack/ensure-postgres.sh
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/bench/...

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/tools/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

.PHONY: codegen
codegen: ## Regenerate deepcopy, conversion, defaulters, OpenAPI and clients (hack/update-codegen.sh).
	hack/update-codegen.sh

.PHONY: verify-codegen
verify-codegen: ## Fail when generated code is not what hack/update-codegen.sh produces.
	hack/verify-codegen.sh
