# Calyptia Core self-hosted management plane.
SHELL := /usr/bin/env bash
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
# Packages of the main module; hack/tools is a module of its own.
PKGS := ./...
TEST_TIMEOUT ?= 45m

# The Fluent Bit config corpus some pkg/fluentbit tests check against (shared/testdata/fluentbit
# of the workspace this project is steered from). Tests never search for it: without
# FLUENTBIT_TESTDATA they skip (fail with CI=true). Set here only when ../shared has it.
FLUENTBIT_TESTDATA ?= $(wildcard $(abspath $(CURDIR)/../shared/testdata/fluentbit))
export FLUENTBIT_TESTDATA

# Release version: the chart's appVersion, the images' tag and, with a leading v, the binaries'.
VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/calyptia-core/Chart.yaml)
IMAGE_REGISTRY ?= ghcr.io/calyptia

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ui ## Build every binary into bin/ (the web UI's assets first, embedded into core).
	$(GO) build -o bin/ ./cmd/...

# The web UI (web/): TypeScript and Preact, built by Vite into web/dist/ui, which cmd/core
# embeds. The build output is not committed: without it core serves a page saying so, and
# go build/vet/test still work on a clean clone. npm ci installs exactly package-lock.json.
UI_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

web/dist/ui/index.html: web/node_modules/.package-lock.json $(UI_SOURCES)
	cd web && npm run --silent build

.PHONY: ui
ui: web/dist/ui/index.html ## Build the web UI's assets into web/dist/ui (npm ci, then Vite), for core to embed.

.PHONY: ui-test
ui-test: web/node_modules/.package-lock.json ## Typecheck (tsc) and unit-test (Vitest) the web UI.
	cd web && npm run --silent typecheck && npm test --silent

.PHONY: run-ui
run-ui: ## Serve the UI's sources with live reload (Vite) against a core on :3000 (CORE_URL), e.g. the one make run starts.
	cd web && npm run dev

.PHONY: run
run: tools ui ## Run the whole plane locally: etcd, kube-apiserver, cloud-api behind an APIService on PostgreSQL, fake nodes and data plane agents for the examples; prints an admin kubeconfig.
	@# Fluent Bit, when its distribution is at hand, lets the example host-mode pipelines run.
	@[ -x bin/fluent-bit ] || $(MAKE) --no-print-directory bin/fluent-bit 2>/dev/null || true
	hack/local-cluster.sh

.PHONY: run-standalone
run-standalone: ## Run cloud-api alone on the local PostgreSQL (no kube-apiserver, client-certificate auth).
	hack/run-local.sh

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
test: lint verify-codegen fuzz ui-test ## Lint, verify generated code, typecheck and test the web UI, then run every unit and integration test (needs PostgreSQL; started if stopped).
	hack/ensure-postgres.sh
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

.PHONY: bench
bench: ## Run the benchmarks (PostgreSQL store beside etcd3 and plain pgx) and print ratios.
	hack/ensure-postgres.sh
	@# Three runs: the upstream write and list benchmarks get fixed iteration counts
	@# (a first 1-iteration run that outlasts -benchtime would be their only one); creates
	@# and watch latency are timed, three times each (the summary takes medians: other load
	@# on the machine skews single short runs). The last run's summary has all the results.
	@mkdir -p bin && rm -f bin/bench-results.json
	BENCH_RESULTS=$(CURDIR)/bin/bench-results.json $(GO) test -count=1 -run '^$$' -bench '^BenchmarkWriteThroughput$$' -benchtime 1000x -timeout 30m ./test/bench/...
	BENCH_RESULTS=$(CURDIR)/bin/bench-results.json $(GO) test -count=1 -run '^$$' -bench '^BenchmarkList$$' -benchtime 5x -timeout 30m ./test/bench/...
	BENCH_RESULTS=$(CURDIR)/bin/bench-results.json $(GO) test -count=3 -run '^$$' -bench '^Benchmark(Creates|CreatesSQL|WatchLatency)$$' -benchtime 1s -timeout 30m ./test/bench/...

.PHONY: bench-metrics
bench-metrics: ## Metric stores: 10,000 pipelines x 30 counters into the embedded PostgreSQL store beside an InfluxDB 2 write API (VictoriaMetrics); query p99.
	hack/ensure-postgres.sh
	@[ -x bin/victoria-metrics ] || $(MAKE) --no-print-directory bin/victoria-metrics
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkMetricStores$$' -benchtime 1x -timeout 30m ./test/bench/metrics/

BENCH_PIPELINES ?= 1000

.PHONY: bench-dataplane
bench-dataplane: tools ## One core-operator with BENCH_PIPELINES pipelines (default 1000) on the e2e control plane: reconcile and removal time beside applying the same objects directly, memory, restart cost.
	hack/ensure-postgres.sh
	BENCH_PIPELINES=$(BENCH_PIPELINES) $(GO) test -tags e2e -count=1 -run '^$$' -bench '^BenchmarkDataPlane$$' -benchtime 1x -timeout 60m ./test/e2e/

BENCH_OBJECTS ?= 10000
BENCH_ROUNDS ?= 3
BENCH_ETCD_FSYNC ?= 1

.PHONY: bench-e2e
bench-e2e: tools ## Pipelines through kube-apiserver vs straight to cloud-api vs a CRD on etcd (BENCH_OBJECTS, default 10000; BENCH_ROUNDS alternated, default 3; BENCH_LARGE=100000 adds a large namespace and a round after it; BENCH_PPROF_DIR keeps CPU and heap profiles; BENCH_ETCD_FSYNC= runs etcd without fsync): medians, ratios, CPU per operation, memory, issue 13's goals.
	hack/ensure-postgres.sh
	@# etcd syncs its writes as PostgreSQL does (E2E_ETCD_FSYNC=): the e2e tests' etcd does not.
	E2E_PROFILING=1 E2E_ETCD_FSYNC=$(BENCH_ETCD_FSYNC) BENCH_OBJECTS=$(BENCH_OBJECTS) BENCH_ROUNDS=$(BENCH_ROUNDS) $(GO) test -tags e2e -count=1 -run '^$$' -bench '^BenchmarkAggregatedAPI$$' -benchtime 1x -timeout 180m ./test/e2e/

.PHONY: lint
lint: ## gofmt, go mod tidy, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/tools/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

.PHONY: manifests
manifests: ## Render artifacts/deploy from the Helm chart (charts/calyptia-core with charts/deploy-values.yaml); make test fails while they differ.
	$(GO) run ./hack/manifests

.PHONY: images
images: ui ## Build OCI image tarballs of every cmd/ binary into bin/images/ (static binaries, no Docker daemon or base image; IMAGE_REGISTRY, VERSION).
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) \
	  $(GO) run ./hack/images -out bin/images -registry $(IMAGE_REGISTRY) -version $(VERSION) -revision "$$(git rev-parse --short HEAD 2>/dev/null)"

.PHONY: codegen
codegen: ## Regenerate deepcopy, conversion, defaulters, OpenAPI and clients (hack/update-codegen.sh).
	hack/update-codegen.sh

.PHONY: verify-codegen
verify-codegen: ## Fail when generated code is not what hack/update-codegen.sh produces.
	hack/verify-codegen.sh

# A real Fluent Bit for the tests that run one (host-mode data plane, hot reload). No package
# registry these machines reach has it, so it is installed from a distribution directory (in
# this workspace ../shared/fluent-bit, whose install.sh checks the binary's digest). Elsewhere,
# tests take $$FLUENT_BIT or a fluent-bit on PATH, or skip saying so (they fail under CI=true).
FLUENT_BIT_DIST ?= ../shared/fluent-bit

bin/fluent-bit:
	@if [ ! -x "$(FLUENT_BIT_DIST)/install.sh" ]; then \
	  echo "fluent-bit: no $(FLUENT_BIT_DIST)/install.sh; set FLUENT_BIT_DIST, or FLUENT_BIT to a fluent-bit for the tests" >&2; exit 1; fi
	$(FLUENT_BIT_DIST)/install.sh $@

.PHONY: fluent-bit
fluent-bit: bin/fluent-bit ## Install Fluent Bit 5.1.1 into bin/ from FLUENT_BIT_DIST (default ../shared/fluent-bit).

bin/victoria-metrics:
	hack/install-victoria-metrics.sh $@

.PHONY: victoria-metrics
victoria-metrics: bin/victoria-metrics ## Install Debian's victoria-metrics into bin/ (the InfluxDB write API the metric store's tests write to).

.PHONY: chromium
chromium: ## Install Debian's chromium (as root) for the web UI's browser tests; they take CHROMIUM, else chromium on PATH.
	hack/install-chromium.sh

# Real-cluster tooling: hack/tools is a module of its own so that k8s.io/kubernetes stays out of
# the main module. kube-apiserver, kube-controller-manager, kube-scheduler and kubectl come from
# k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3; each is rebuilt only when missing or
# older than hack/tools. kwok (fake nodes that run pods without a container runtime) is installed
# at KWOK_VERSION with its own go.mod.
KUBE_VERSION := v1.37.2
KUBE_MINOR := 37
TOOLS_MOD := hack/tools/go.mod hack/tools/go.sum
KUBE_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBE_MINOR) -X $(p).gitTreeState=clean)
E2E_TIMEOUT ?= 30m

bin/kube-apiserver bin/kube-controller-manager bin/kube-scheduler bin/kubectl: $(TOOLS_MOD)
	cd hack/tools && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o ../../$@ k8s.io/kubernetes/cmd/$(notdir $@)

bin/etcd: $(TOOLS_MOD) hack/tools/cmd/etcd/main.go
	cd hack/tools && $(GO) build -o ../../$@ ./cmd/etcd

# kwok has no replace directives, so `go install pkg@version` builds it with the dependency
# versions its own go.mod pins (as a tool of hack/tools it would get k8s.io/kubernetes' ones).
# Its stage definitions (how fake nodes and their pods move through their lifecycle) ship in
# its module, not in the binary's defaults: they are copied into bin/kwok-stages so the tests
# do not need the module cache. bin/.kwok-version changes only when KWOK_VERSION does, which
# is what makes kwok outdated. The module's directory is looked up from / so that no go.mod or
# go.sum of this repository records it.
KWOK_VERSION ?= v0.8.0
KWOK_STAGES := node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
	pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml

.PHONY: FORCE
bin/.kwok-version: FORCE
	@mkdir -p bin && echo '$(KWOK_VERSION)' | cmp -s - $@ || echo '$(KWOK_VERSION)' > $@

bin/kwok $(addprefix bin/kwok-stages/,$(notdir $(KWOK_STAGES))) &: bin/.kwok-version
	GOBIN=$(CURDIR)/bin $(GO) install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
	@dir=$$(cd / && GOWORK=off $(GO) mod download -json sigs.k8s.io/kwok@$(KWOK_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	if [ -z "$$dir" ]; then echo "kwok $(KWOK_VERSION): module directory not found" >&2; exit 1; fi; \
	rm -rf bin/kwok-stages && mkdir -p bin/kwok-stages && \
	for f in $(KWOK_STAGES); do cp "$$dir/kustomize/stage/$$f" bin/kwok-stages/ || exit 1; done; \
	chmod u+w bin/kwok-stages/* && touch bin/kwok bin/kwok-stages/*

.PHONY: tools
tools: bin/etcd bin/kube-apiserver bin/kube-controller-manager bin/kube-scheduler bin/kwok ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with its stages (and kubectl unless PATH has one within a minor version) into bin/.
	@# kubectl supports one minor version of skew against kube-apiserver.
	@m=$$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n1); \
	if [ -z "$$m" ] || [ "$$m" -lt $$(( $(KUBE_MINOR) - 1 )) ] || [ "$$m" -gt $$(( $(KUBE_MINOR) + 1 )) ]; then \
	  $(MAKE) --no-print-directory bin/kubectl; fi

.PHONY: e2e
e2e: tools ui chromium ## End-to-end tests: cloud-api behind a real kube-apiserver, etcd, kubectl and kwok's fake nodes, the web UI in headless chromium (needs PostgreSQL).
	hack/ensure-postgres.sh
	$(GO) vet -tags e2e ./test/e2e/...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags e2e ./test/e2e/...
	$(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) ./test/e2e/...
