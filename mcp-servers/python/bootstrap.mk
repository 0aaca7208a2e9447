# Shared by the server packages' Makefiles (include it after setting PYTHON and REPO_ROOT).
# Every target that needs an environment depends on $(DEV) or $(GATEWAY): on first use they create a local
# .venv with the package and its dev tools, pinned by the repo's constraints.txt, plus the repo's gateway for
# serve-http. When PYTHON is given from outside (the root `make test` passes its venv), nothing is installed.
PIP := $(PYTHON) -m pip install -q --disable-pip-version-check -c $(REPO_ROOT)/constraints.txt
LOCAL := $(filter .venv/bin/python,$(PYTHON))
DEV := $(if $(LOCAL),.venv/.dev-installed)
GATEWAY := $(if $(LOCAL),.venv/.dev-installed .venv/.gateway-installed)

.venv/bin/python:
	python3 -m venv .venv
	.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip

.venv/.dev-installed: .venv/bin/python pyproject.toml
	$(PIP) -e ".[dev]"
	@touch $@

.venv/.gateway-installed: .venv/bin/python $(REPO_ROOT)/pyproject.toml
	$(PIP) -e "$(REPO_ROOT)"
	@touch $@

install: $(if $(LOCAL),.venv/bin/python)
	$(PIP) -e .

dev-install: $(if $(LOCAL),.venv/.dev-installed,)
ifeq ($(LOCAL),)
	$(PIP) -e ".[dev]"
endif
