# Common tasks. `make run` works on a fresh machine with a Rust toolchain; `make test` also
# needs kubectl (it renders the README's kustomize overlay with `kubectl kustomize`, offline).
CARGO ?= cargo
BIN := target/debug/nsoffload
CLUSTER_ID ?= home
STATE ?= manifests/examples/standalone.yaml
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# The image `make image` builds; the install manifests run nsoffload:$(VERSION).
IMAGE ?= nsoffload:$(VERSION)
# docker or podman; empty: the first that answers (`docker info`, then `podman info`).
ENGINE ?=

.PHONY: build run certs test lint manifests image bench bench-soak bench-scale e2e e2e-faults e2e-local cluster-up cluster-down clean

build:
	$(CARGO) build

certs/tls.crt: | build
	$(BIN) certs --out certs --host localhost --host 127.0.0.1

certs: certs/tls.crt

# Serves the example state on https://127.0.0.1:8443 (admin on http://127.0.0.1:8080).
run: build certs/tls.crt
	$(BIN) serve --standalone $(STATE) --cluster-id $(CLUSTER_ID) \
		--tls-cert-file certs/tls.crt --tls-key-file certs/tls.key \
		--bind-address 127.0.0.1:8443 --admin-address 127.0.0.1:8080

# Every test; no cluster, no network (the real-cluster tests are reported as ignored).
test:
	env -u NSOFFLOAD_E2E_KUBECONFIG -u NSOFFLOAD_E2E_REMOTE_KUBECONFIGS $(CARGO) test

# The real-cluster suites against clusters you provide: the webhooks need
# NSOFFLOAD_E2E_KUBECONFIG, the reconciler also NSOFFLOAD_E2E_REMOTE_KUBECONFIGS (see README);
# without them every test fails. `supervisor_entry` is the suite's helper process, not a test.
e2e:
	$(CARGO) test --test e2e --test e2e_reconcile -- --ignored --skip supervisor_entry \
		--test-threads=1 --nocapture

# API server outages and gone clusters; needs the local control planes (make e2e-local runs it).
e2e-faults:
	$(CARGO) test --test e2e_faults -- --ignored --skip supervisor_entry --test-threads=1 --nocapture

# The same suites against fresh local control planes (home + r1 + r2 on 127.0.0.1), built
# from Debian's Kubernetes source on first use; stopped when the run ends.
e2e-local:
	bash tests/cluster/e2e-local.sh

# Local clusters for trying things by hand (tests/cluster/localkube.sh has more commands).
cluster-up:
	bash tests/cluster/localkube.sh up home r1 r2 --scheduler home
	bash tests/cluster/localkube.sh nodes home worker-1 worker-2 virtual:r1 virtual:r2

cluster-down:
	bash tests/cluster/localkube.sh down

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Regenerates the checked-in manifests from code.
manifests: build
	$(BIN) manifests --out manifests

# Builds the image with docker or podman (see the Dockerfile); says so and fails when neither
# can build here.
image:
	@engine="$(ENGINE)"; \
	if [ -z "$$engine" ]; then \
		if docker info >/dev/null 2>&1; then engine=docker; \
		elif podman info >/dev/null 2>&1; then engine=podman; fi; \
	fi; \
	if [ -z "$$engine" ]; then \
		for e in docker podman; do \
			if command -v $$e >/dev/null 2>&1; then \
				echo "make image: $$e is installed, but \`$$e info\` fails (is its daemon or service running?)" >&2; \
			else echo "make image: $$e is not installed" >&2; fi; \
		done; \
		echo "make image: neither docker nor podman can build here; start or install one (or pass ENGINE=...), or build elsewhere with: docker build -t $(IMAGE) ." >&2; \
		exit 1; \
	fi; \
	echo "$$engine build -t $(IMAGE) ."; \
	$$engine build -t $(IMAGE) .

# Colours only on a terminal: in a file or a CI log the summary stays plain text.
bench:
	@if [ -t 1 ] && [ -t 2 ]; then :; else export NO_COLOR=1 CARGO_TERM_COLOR=never; fi; \
	$(CARGO) bench --bench admission

# Ten minutes at 2,000 req/s with the certificate files rotated every minute (not in `make
# test`): failed requests, RSS and open file descriptors of the release server.
bench-soak:
	$(CARGO) bench --bench soak

# The reconciler at scale on local control planes (10,000 NamespaceOffloadings; 1,000 over
# three remote clusters beside a plain client's floor); not in `make test`. Takes ~20 minutes.
bench-scale:
	bash tests/cluster/bench-scale.sh

clean:
	$(CARGO) clean
