# Common tasks. `make run` and `make test` work on a fresh machine with a Rust toolchain.
CARGO ?= cargo
BIN := target/debug/nsoffload
CLUSTER_ID ?= home
STATE ?= manifests/examples/standalone.yaml

.PHONY: build run certs test lint manifests bench e2e clean

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

# Every test; no cluster, no network (the e2e suite compiles and skips).
test:
	env -u NSOFFLOAD_E2E_KUBECONFIG -u NSOFFLOAD_E2E_REMOTE_KUBECONFIGS $(CARGO) test

# The real-cluster suites: the webhooks need NSOFFLOAD_E2E_KUBECONFIG, the reconciler also
# NSOFFLOAD_E2E_REMOTE_KUBECONFIGS (see README and tests/e2e_reconcile.rs).
e2e:
	$(CARGO) test --test e2e --test e2e_reconcile -- --test-threads=1 --nocapture

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Regenerates the checked-in manifests from code.
manifests: build
	$(BIN) manifests --out manifests

bench:
	$(CARGO) bench --bench admission

clean:
	$(CARGO) clean
