# Container images and their tests (issue 12; docs/deploy.md). Included by the root Makefile.
#   make container        every image: harbor-gateway (Containerfile) and one per mcp-servers/python/*/Containerfile
#   make container-test   builds them, then tests/container: stdio servers, the gateway, kustomize, kube play
# Here there is no Docker engine nor registry: buildah builds, podman runs (with runc), and the base image is
# Debian bookworm made by mmdebstrap (cached in .container/). Elsewhere: CONTAINER_BASE=python:3.11-slim-bookworm.

CONTAINER_DIR := .container
CONTAINER_BASE ?= localhost/harbor-base
IMAGE_TAG ?= latest
# a server package = a folder with a pyproject.toml; it gets an image when it has a Containerfile
SERVER_CONTAINERFILES := $(filter $(patsubst %/pyproject.toml,%/Containerfile,$(wildcard mcp-servers/python/*/pyproject.toml)),$(wildcard mcp-servers/python/*/Containerfile))
# mcp-servers/python/data_analysis_server/Containerfile -> harbor-data-analysis
image_name = harbor-$(subst _,-,$(patsubst %_server,%,$(notdir $(patsubst %/Containerfile,%,$(1)))))
version_of = $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(dir $(1))pyproject.toml)
IMAGES := harbor-gateway $(foreach f,$(SERVER_CONTAINERFILES),$(call image_name,$f))
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
CA_BUNDLE ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
comma := ,
# Layer caching speeds up rebuilding while you edit; a clean build (CI: container-test) skips it, as committing
# the build stage's layers costs ~13 s per large image and nothing is cached there to reuse.
CONTAINER_LAYERS ?= --layers
BUD = buildah bud --isolation chroot --format docker $(CONTAINER_LAYERS) --build-arg BASE_IMAGE=$(CONTAINER_BASE) \
	--build-arg REVISION=$(REVISION) $(if $(CA_BUNDLE),--secret id=ca-bundle$(comma)src=$(CA_BUNDLE))
LINT := $(CONTAINER_DIR)/lint

.PHONY: container container-tools container-base container-test container-clean $(addprefix container-,$(IMAGES))

container-tools: ## podman, buildah, runc, mmdebstrap (installed with apt-get when absent; needs root)
	@missing=""; for tool in podman buildah runc mmdebstrap; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "missing:$$missing; run 'sudo apt-get install$$missing'" >&2; exit 1; fi; fi

# Debian bookworm with python3 (3.11, as constraints.txt was resolved on), no docs, man pages nor locales.
$(CONTAINER_DIR)/harbor-base.tar: | container-tools
	@mkdir -p $(CONTAINER_DIR)
	mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
	  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	  bookworm $(CONTAINER_DIR)/harbor-base.partial.tar  # mmdebstrap picks the output format from the name
	mv $(CONTAINER_DIR)/harbor-base.partial.tar $@

container-base: container-tools $(if $(filter localhost/harbor-base,$(CONTAINER_BASE)),$(CONTAINER_DIR)/harbor-base.tar)
ifeq ($(CONTAINER_BASE),localhost/harbor-base)
	@podman image exists localhost/harbor-base || podman import $(CONTAINER_DIR)/harbor-base.tar localhost/harbor-base
endif

GATEWAY_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' gateway/__init__.py)

# Each image is tagged IMAGE_TAG (latest) and its package's version (what deploy/k8s/base pins).
container-harbor-gateway: container-base
	$(BUD) --build-arg VERSION=$(GATEWAY_VERSION) -f Containerfile \
	  -t localhost/harbor-gateway:$(IMAGE_TAG) -t localhost/harbor-gateway:$(GATEWAY_VERSION) .

define server_image
container-$(call image_name,$(1)): container-base
	$$(BUD) --build-arg VERSION=$(call version_of,$(1)) -f $(1) \
	  -t localhost/$(call image_name,$(1)):$$(IMAGE_TAG) -t localhost/$(call image_name,$(1)):$(call version_of,$(1)) .
endef
$(foreach f,$(SERVER_CONTAINERFILES),$(eval $(call server_image,$f)))

container: $(addprefix container-,$(IMAGES)) ## build every image (harbor-gateway, harbor-<server>) with buildah
	@echo "== image sizes"
	@for image in $(IMAGES); do podman image inspect --format "{{.Size}}" localhost/$$image:$(IMAGE_TAG) \
	  | awk -v name=$$image '{printf "  %-24s %4.0f MB\n", name, $$1 / 1e6}'; done

$(LINT)/.installed: tests/container/lint-tools.txt
	@test -x $(LINT)/bin/python || $(PYTHON_BOOT) -m venv $(LINT)
	$(LINT)/bin/pip install $(PIP_FLAGS) -r tests/container/lint-tools.txt
	@touch $@

# Clean builds here (no layer cache). The checkers' venv (mostly downloads) installs in the background while
# the images build (mostly CPU): ~40 s less in CI; its log is .container/lint-install.log.
container-test: install ## build every image, then run, probe and call them; render and play deploy/k8s
	@mkdir -p $(CONTAINER_DIR) && rm -f $(CONTAINER_DIR)/lint-install.rc
	@{ $(MAKE) --no-print-directory $(LINT)/.installed > $(CONTAINER_DIR)/lint-install.log 2>&1; echo $$? > $(CONTAINER_DIR)/lint-install.rc; } &
	$(MAKE) --no-print-directory container container-redis-test CONTAINER_LAYERS=
	@for i in $$(seq 900); do [ -f $(CONTAINER_DIR)/lint-install.rc ] && break; sleep 1; done; \
	  rc=$$(cat $(CONTAINER_DIR)/lint-install.rc 2>/dev/null || echo "timed out"); \
	  rm -f $(CONTAINER_DIR)/lint-install.rc; [ "$$rc" = 0 ] || { cat $(CONTAINER_DIR)/lint-install.log >&2; exit 1; }
	HARBOR_CONTAINER_TESTS=1 HARBOR_LINT_BIN=$(CURDIR)/$(LINT)/bin IMAGE_TAG=$(IMAGE_TAG) \
	  $(PY) -m pytest -q -p no:cacheprovider tests/container

# The podman-test overlay's Redis (deploy/k8s/overlays/podman-test; issue 11): podman cannot pull the official
# image here, so the play test uses Debian bookworm's own redis-server (7.0), made like harbor-base by
# mmdebstrap and cached in .container/. Only that overlay uses it; the base keeps the official image reference.
$(CONTAINER_DIR)/harbor-redis-test.tar: | container-tools
	@mkdir -p $(CONTAINER_DIR)
	mmdebstrap --quiet --variant=minbase --include=redis-server \
	  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	  bookworm $(CONTAINER_DIR)/harbor-redis-test.partial.tar
	mv $(CONTAINER_DIR)/harbor-redis-test.partial.tar $@

container-redis-test: container-tools $(CONTAINER_DIR)/harbor-redis-test.tar ## localhost/harbor-redis-test (test only)
	@podman image exists localhost/harbor-redis-test:latest || podman import \
	  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	  --change 'USER 10002:10002' --change 'CMD ["redis-server"]' \
	  $(CONTAINER_DIR)/harbor-redis-test.tar localhost/harbor-redis-test:latest
