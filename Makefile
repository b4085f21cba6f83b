# Cairn: `make up` serves the API on 127.0.0.1:3001; `make test` runs every test.
# Both install what is missing (the wasm32-wasip2 target) and build first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Build output lives outside the clone so fresh clones (and CI) reuse it:
# ./target is a symlink to $(CAIRN_CACHE)/target.
CAIRN_CACHE ?= $(HOME)/.cache/cairn
TARGET_CACHE := $(CAIRN_CACHE)/target
COMPONENTS := cairn-gateway cairn-kernel cairn-policy cairn-control cairn-derive-worker
LISTEN ?= 127.0.0.1:3001
DATA_DIR ?= .cairn
CARGO ?= cargo

.PHONY: help setup models build components host up test unit e2e bench bench-derive bench-recall bench-policy tiers-json deny-adapter clean

help:
	@echo "make up     build everything and serve the API on $(LISTEN) (data in $(DATA_DIR)/)"
	@echo "make test   build everything and run every test (unit, black-box HTTP, SDK)"
	@echo "make bench  write benchmark: 2000 writes after 100k memories"
	@echo "make bench-derive  derivation benchmark: 20000 embed jobs with the local embedder"
	@echo "make bench-recall  recall benchmark: recall/recall_text at c=1,16 over 100k memories, writes under recall load"
	@echo "make bench-policy  policy benchmark: rules/evaluate and tools/select at c=1,16 over 1000 active rules"
	@echo "make tiers-json    regenerate config/tiers.json (tier_profiles for spin up) from config/tiers.yaml"
	@echo "make deny-adapter  rebuild the deny-all adapter cairn embeds"

setup:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
	@tools/fetch-model.sh
	@command -v rustup >/dev/null && { rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2; } || true
	@if [ ! -e target ]; then mkdir -p "$(TARGET_CACHE)" && ln -s "$(TARGET_CACHE)" target; fi

# all-MiniLM-L6-v2 into ~/.cache/cairn/ai-models (setup runs it; once).
models:
	@tools/fetch-model.sh

components: setup
	$(CARGO) build --release --target wasm32-wasip2 $(addprefix -p ,$(COMPONENTS))

host: setup
	$(CARGO) build --release -p cairn-runtime-host

build: components host

up: build
	./target/release/cairn up --listen $(LISTEN) --data-dir $(DATA_DIR)

# The Sql seam's PostgreSQL backend (feature native-postgres) is tested
# against a throwaway server (crates/cairn-testpg).
# The TLS test's throwaway CA is made with the openssl command (installed
# from Debian's package when missing and apt-get is at hand).
unit: setup
	@command -v openssl >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get install -y -q openssl >/dev/null; } || { echo "openssl not found: install it (the PostgreSQL TLS test needs it)"; exit 1; }
	$(CARGO) test --release --workspace --exclude cairn-e2e
	$(CARGO) test --release -p cairn-spin --features native-postgres

# tools/ensure-browser.sh: headless Chromium for the console's browser test
# (installed when missing; the test skips without it unless CAIRN_REQUIRE_BROWSER=1).
# The black-box suite runs twice: on SQLite, then on PostgreSQL (each test
# process starts its own throwaway server; tests of what only SQLite has
# say they are skipped).
e2e: build
	@tools/ensure-browser.sh
	$(CARGO) test --release -p cairn-e2e
	CAIRN_TEST_BACKEND=postgres $(CARGO) test --release -p cairn-e2e

test: build unit e2e

bench: build
	./target/release/cairn bench write --writes 2000 --concurrency 1 --preload 100000

bench-derive: build
	./target/release/cairn bench derive --jobs 20000

bench-recall: build
	./target/release/cairn bench recall --memories 100000

bench-policy: build
	./target/release/cairn bench policy --rules 1000

# config/tiers.json: the tiers file as the JSON Spin's `tier_profiles`
# variable takes (`spin up --variable tier_profiles=@config/tiers.json`).
# A unit test fails while it differs from config/tiers.yaml.
tiers-json: host
	./target/release/cairn tiers-json --tiers config/tiers.yaml > config/tiers.json.tmp && mv config/tiers.json.tmp config/tiers.json

# The deny-all adapter cairn embeds (runtime-host/src/compose/deny_adapter.wasm),
# rebuilt from components/deny-adapter; commit the result.
deny-adapter: setup
	$(CARGO) build --release --target wasm32-wasip2 -p cairn-deny-adapter
	cp target/wasm32-wasip2/release/cairn_deny_adapter.wasm runtime-host/src/compose/deny_adapter.wasm

clean:
	rm -rf $(DATA_DIR)
