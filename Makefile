# Gridplay: `make up` runs the whole network on this machine, `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

APT_PACKAGES := libvulkan1 mesa-vulkan-drivers nasm cmake glslc chromium redis-server iproute2 curl \
  xvfb bubblewrap slirp4netns pulseaudio pulseaudio-utils libasound2-plugins alsa-utils xterm xclip xdotool vulkan-tools mesa-utils lbreakout2 ace-of-penguins python3 python3-venv \
  openssl libnss3-tools coturn nftables
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CARGO ?= cargo
WEB := client-web
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
ANVIL := chain/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
# The one program and, beside it, the library that app sandboxes preload for their gamepads.
GRIDPLAY_BUILD := -p gridplay -p gridplay-gamepad-preload --bin gridplay --lib

.PHONY: help deps web-deps chain-deps peers-venv web up test test-rust test-web test-chain test-netns e2e lint generated bench fuzz clean

help:
	@echo "make up     build and run the whole Gridplay network on this machine (http://127.0.0.1:8080)"
	@echo "make test   formatting, lints, type check, unit and end-to-end tests (real Vulkan, openh264, WebRTC, Chromium)"
	@echo "make bench  measure the streaming pipeline and the session broker and write bench/results/"
	@echo "make fuzz   fuzz every decoder of untrusted bytes (nightly, cargo-fuzz) and write bench/results/fuzz.json"

# System packages: Vulkan (Mesa lavapipe on CPU-only machines), nasm for openh264, glslc for shaders, Chromium for browser tests,
# Xvfb, bubblewrap and slirp4netns for app sessions, and the example catalogue's apps.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

web-deps:
	@if [ ! -d $(WEB)/node_modules ] || [ $(WEB)/package-lock.json -nt $(WEB)/node_modules/.package-lock.json ]; then \
	  cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error; fi

chain-deps:
	@if [ ! -d chain/contracts/node_modules ] || [ chain/contracts/package-lock.json -nt chain/contracts/node_modules/.package-lock.json ]; then \
	  cd chain/contracts && npm ci --no-audit --no-fund --loglevel=error; fi

# Independent WebRTC peers for interop tests: aiortc (PyPI) in its own virtual environment, reinstalled when
# tests/peers/requirements.txt changes.
PEERS_VENV := $(TARGET_DIR)/peers-venv
PEERS_REQUIREMENTS := tests/peers/requirements.txt

peers-venv:
	@if [ ! -x $(PEERS_VENV)/bin/python ] || [ ! -f $(PEERS_VENV)/.installed ] || \
	  [ $(PEERS_REQUIREMENTS) -nt $(PEERS_VENV)/.installed ]; then \
	  echo "installing $(PEERS_REQUIREMENTS) into $(PEERS_VENV)"; \
	  { [ -x $(PEERS_VENV)/bin/python ] || python3 -m venv $(PEERS_VENV); } && \
	  $(PEERS_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(PEERS_REQUIREMENTS) && \
	  touch $(PEERS_VENV)/.installed; \
	fi

web: web-deps
	cd $(WEB) && npm run --silent build

# The whole network on this machine, settling on a local anvil (contract deployed, host bonded, demo player funded).
up: deps web chain-deps
	$(CARGO) build --release $(GRIDPLAY_BUILD)
	$(TARGET_DIR)/release/gridplay up --web-dir $(WEB)/dist --anvil $(abspath $(ANVIL)) --apps apps/catalogue.toml $(ARGS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p gridplay-streaming -p gridplay-host --all-targets --features gridplay-streaming/nvenc -- -D warnings

test-rust:
	$(CARGO) build -p gridplay-gamepad-preload
	$(CARGO) test --workspace

# TypeScript types are generated from the protocol crate by `cargo test`; the committed copies must match.
generated: test-rust
	git diff --exit-code -- $(WEB)/src/generated || (echo "client-web/src/generated is stale: commit the regenerated files" && false)

test-web: web-deps
	cd $(WEB) && npm test

# Contracts: the committed artifacts must match a fresh compile and the leaf vectors a fresh viem encoding
# (the contract's rules run on a real anvil in `cargo test -p gridplay-chain`).
test-chain: chain-deps
	cd chain/contracts && node compile.mjs --check && node scripts/vectors.mjs --check

e2e: web chain-deps peers-venv
	$(CARGO) build $(GRIDPLAY_BUILD)
	cd $(WEB) && GRIDPLAY_BIN=$(abspath $(TARGET_DIR))/debug/gridplay GRIDPLAY_WEB_DIR=$(abspath $(WEB))/dist \
	  GRIDPLAY_PEERS_PYTHON=$(abspath $(PEERS_VENV))/bin/python npm run --silent e2e

# A 30 s stream through network namespaces: 5 Mbit/s tbf bottleneck, 50 ms RTT, jitter, 1% loss (needs root),
# once over WebRTC and once over QUIC, each with the native player. Then Chromium plays a host that sits behind a
# NAT of its own, from behind another (nftables), with STUN and TURN from coturn.
test-netns: web
	$(CARGO) build --bin gridplay
	cd $(WEB) && npm run --silent build:node
	$(SUDO) tests/netns/constrained_network.sh $(TARGET_DIR)/debug/gridplay 30 webrtc
	$(SUDO) tests/netns/constrained_network.sh $(TARGET_DIR)/debug/gridplay 30 quic
	$(SUDO) tests/netns/nat.sh $(TARGET_DIR)/debug/gridplay 15

test: deps lint test-web test-chain generated e2e test-netns

# The browser run (Chromium, Play to first frame, host memory) feeds the Rust run, which measures
# the pipeline by stage on one lavapipe thread and one live session, and writes bench/results/pipeline.json.
# The broker run sweeps an open-loop allocation load over 1k and 10k simulated hosts on the memory store
# and on Redis (1 and 2 brokers), measures the EVALSHA ceiling and broker memory: bench/results/broker.json.
# The streaming run measures click-to-photon per transport on loopback and through the constrained network
# (network namespaces: root) and 720p30 sessions per host: bench/results/streaming.json.
# The chain run measures settlement gas per session-hour on anvil (1 to 10,000 sessions per epoch) against
# per-report transactions: bench/results/chain.json.
# The sound run plays Orbit in Chromium for 10 minutes (A/V offset, its drift, sound capture to playout) and measures
# synthesis + Opus per frame: bench/results/audio.json.
# The apps run measures capture cost, host CPU per app session, Play to first frame per app (from its browser run)
# and vkcube sessions per host: bench/results/apps.json.
# Last, bench/results/REPORT.md: every figure against its goal, with plots.
bench: deps web chain-deps
	$(CARGO) build --release -p gridplay -p gridplay-bench -p gridplay-gamepad-preload
	mkdir -p bench/results
	cd $(WEB) && GRIDPLAY_BIN=$(abspath $(TARGET_DIR))/release/gridplay GRIDPLAY_WEB_DIR=$(abspath $(WEB))/dist \
	  npm run --silent bench | tail -n 1 > $(abspath bench/results)/browser.json
	LP_NUM_THREADS=1 $(TARGET_DIR)/release/gridplay-bench pipeline --out bench/results --browser bench/results/browser.json
	$(TARGET_DIR)/release/gridplay-bench broker --out bench/results
	$(SUDO) $(TARGET_DIR)/release/gridplay-bench streaming --gridplay $(TARGET_DIR)/release/gridplay \
	  --browser bench/results/browser.json --out bench/results
	$(TARGET_DIR)/release/gridplay-bench chain --out bench/results
	cd $(WEB) && GRIDPLAY_BIN=$(abspath $(TARGET_DIR))/release/gridplay GRIDPLAY_WEB_DIR=$(abspath $(WEB))/dist \
	  npm run --silent bench:audio | tail -n 1 > $(abspath bench/results)/browser-audio.json
	$(TARGET_DIR)/release/gridplay-bench sound --out bench/results --browser bench/results/browser-audio.json
	cd $(WEB) && GRIDPLAY_BIN=$(abspath $(TARGET_DIR))/release/gridplay GRIDPLAY_WEB_DIR=$(abspath $(WEB))/dist \
	  npm run --silent bench:apps | tail -n 1 > $(abspath bench/results)/browser-apps.json
	$(SUDO) $(TARGET_DIR)/release/gridplay-bench apps --gridplay $(TARGET_DIR)/release/gridplay \
	  --browser bench/results/browser-apps.json --out bench/results
	$(TARGET_DIR)/release/gridplay-bench report --results bench/results

# Every fuzz target in turn, one core each, FUZZ_RUNS executions (default 10 million; about 2 h on
# 2 cores, the signature-checking targets being the slow ones) or FUZZ_SECONDS each if set; minimises
# fuzz/corpus/<target> (committed: `cargo test` replays it) and writes bench/results/fuzz.json.
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?= 0
fuzz:
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

clean:
	$(CARGO) clean
	rm -rf $(WEB)/dist $(WEB)/build
