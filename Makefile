# Friday Event Bus: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PKG := n8n-nodes-friday

.PHONY: venv run test test-python test-node bench proto lint system system-test n8n clean help

help:
	@echo "make run    install what is missing, then run the sidecar on the embedded Redis (data in ./data)"
	@echo "make test   install what is missing, then run every test (Python, n8n package, real n8n end-to-end)"
	@echo "make bench  benchmarks: direct redis-py baseline vs the sidecar, with ratios"

system:
	@scripts/ensure-system.sh run

system-test:
	@scripts/ensure-system.sh test

$(BIN)/.installed: pyproject.toml clients/python/pyproject.toml | system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ./clients/python -e '.[dev,otel]'
	touch $@

venv: $(BIN)/.installed

$(PKG)/node_modules/.installed: $(PKG)/package-lock.json | system
	cd $(PKG) && npm_config_yes=true npm ci --no-audit --no-fund
	touch $@

n8n:
	scripts/n8n/install.sh
	scripts/n8n/install-browser.sh
	deploy/install-compose.sh

run: system $(BIN)/.installed
	$(BIN)/friday serve

test-node: $(PKG)/node_modules/.installed
	cd $(PKG) && npm run build && npm run lint && npm run lint:packed && npm test

test-python: system-test $(BIN)/.installed n8n test-node
	$(BIN)/pytest

test: test-python

bench: system $(BIN)/.installed n8n test-node
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/bench_cluster.py
	$(BIN)/python bench/bench_workers.py
	$(BIN)/python bench/n8n_latency.py
	$(BIN)/python bench/n8n_queue_latency.py

proto: $(BIN)/.installed
	scripts/gen_proto.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check sidecar tests clients

clean:
	rm -rf $(VENV) $(PKG)/node_modules $(PKG)/dist
