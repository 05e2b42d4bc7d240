# Flat verbs. Every verb that runs Python creates and reuses .venv itself.
# torch is pinned to the CPU build here; the images pin their own CUDA / torch_npu builds.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
TORCH_PIN   ?= torch==2.13.0
# Lightricks' ltx-pipelines backend (i2v/families/ltx2_official). ltx-core asks for an unpinned
# torchaudio; pip would pick PyPI's newest, a CUDA build (on older torch also a torch upgrade).
# So the three wheels go in with --no-deps at exact versions (ltx-core's other dependencies are in
# pyproject's runtime extra) and torchaudio's compiled libraries are deleted: PyPI's Linux wheels
# link libcudart / libc10_cuda and cannot load next to a CPU torch, while what ltx-core calls
# (MelSpectrogram, resample) is pure Python and runs without them (torchaudio's _load_lib returns
# False for a missing library). There is no torchaudio wheel for torch 2.13; 2.11.1 requires
# torch>=2.11, so torch stays as pinned (checked below). The images pin their own torchaudio.
LTX_PINS    ?= ltx-core==1.0.0 ltx-pipelines==1.0.0
TORCHAUDIO_PIN ?= torchaudio==2.11.1
STAMP       := $(VENV)/.installed
MODEL       ?=
ENV_FILE    ?= .env

.PHONY: demo test lint serve up down provision detect doctor env clean help bundle load

help:
	@echo "make demo       generate a video on CPU with the embedded default (a tiny local model)"
	@echo "make test       run the test suite (CPU)"
	@echo "make up         provision this host, make sure the image is here (pull, else build; PULL=only|never),"
	@echo "                then docker compose up -d --wait"
	@echo "make bundle MODEL=M   one tar for an air-gapped host: image, model folder, compose.yaml, checksums"
	@echo "make load BUNDLE=F    on that host: check the bundle, load the image, place the model (I2V_OFFLINE=1)"
	@echo "make down       docker compose down"
	@echo "make build-cuda / build-cann / build-cpu   build this host's image locally (docker buildx bake)"
	@echo "make containers the container checks CI runs (root; builds both images, compose up cpu)"
	@echo "make provision  probe the host and write $(ENV_FILE)"
	@echo "make doctor     check the host and print the fixes"
	@echo "make lint       ruff"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[runtime,nvidia,postgres,dev]"
	$(PY) -m pip install --quiet --no-deps "$(TORCHAUDIO_PIN)" $(LTX_PINS)
	$(PY) -c 'import importlib.util, pathlib; lib = pathlib.Path(importlib.util.find_spec("torchaudio").origin).parent / "lib"; [p.unlink() for p in lib.glob("*.so")]'
	$(PY) -c 'import torch, torchaudio, torchaudio._extension as ext, ltx_pipelines; assert torch.__version__.split("+")[0] == "$(patsubst torch==%,%,$(TORCH_PIN))" and torch.version.cuda is None and not ext._IS_TORCHAUDIO_EXT_AVAILABLE, (torch.__version__, torch.version.cuda)'
	$(PY) -m pip check
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/i2v demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check i2v provision tests
	$(VENV)/bin/ruff format --check i2v provision tests

serve: $(STAMP)
	$(VENV)/bin/i2v serve

provision: $(STAMP)
	$(VENV)/bin/provision env --output $(ENV_FILE) $(if $(MODEL),--model $(MODEL))

detect: $(STAMP)
	$(VENV)/bin/provision detect

doctor: $(STAMP)
	$(VENV)/bin/provision doctor

# ---- images and compose (docker/, compose.yaml; README "Images and compose") -------------------
# compose reads .env through --env-file (interpolation, COMPOSE_PROFILES) and I2V_ENV_FILE (the
# containers' env_file); provision writes compose.override.yaml beside .env on Atlas hosts.
COMPOSE        ?= docker compose
WAIT_TIMEOUT   ?= 1800
OVERRIDE        = $(dir $(ENV_FILE))compose.override.yaml
COMPOSE_ARGS    = --env-file $(ENV_FILE) -f compose.yaml $(if $(wildcard $(OVERRIDE)),-f $(OVERRIDE))
BAKE           ?= docker buildx bake -f docker/docker-bake.hcl
# The variant provision chose (the tag of I2V_IMAGE in .env, e.g. cuda12.6 or cann8.3.rc2-910b), else the newest.
IMAGE_VARIANT   = $(shell sed -n 's/^I2V_IMAGE=.*:[^-]*-//p' $(ENV_FILE) 2>/dev/null)
CUDA           ?= $(or $(patsubst cuda%,%,$(filter cuda%,$(IMAGE_VARIANT))),12.8)
CANN           ?= $(or $(shell echo '$(IMAGE_VARIANT)' | sed -n 's/^cann\([^-]*\)-.*/\1/p'),8.3.rc2)
CHIP           ?= $(or $(shell echo '$(IMAGE_VARIANT)' | sed -n 's/^cann[^-]*-\([a-z0-9]*\).*/\1/p'),910b)
OS             ?= $(or $(shell echo '$(IMAGE_VARIANT)' | sed -n 's/^cann[^-]*-[a-z0-9]*-//p'),ubuntu22.04)
PLATFORM       ?= $(or $(shell sed -n 's/^DOCKER_DEFAULT_PLATFORM=//p' $(ENV_FILE) 2>/dev/null),linux/$(subst x86_64,amd64,$(subst aarch64,arm64,$(shell uname -m))))
# Extra bake arguments, e.g. --set '*.args.PIP_INDEX_URL=https://pypi.org/simple' (the container checks' build args).
BAKE_ARGS      ?=
BAKE_LOCAL      = --load --set '*.platform=$(PLATFORM)' --set '*.cache-to=' $(BAKE_ARGS)
# make up's image step: auto = here, else pull, else build here; only = pull or stop with the build command;
# never = here or stop (offline). I2V_OFFLINE=1 in .env means never.
PULL           ?= auto
IMAGE_KIND      = $(if $(filter cuda%,$(IMAGE_VARIANT)),cuda,$(if $(filter cann%,$(IMAGE_VARIANT)),cann,cpu))
BUNDLE         ?=

.PHONY: build-cuda build-cann build-cpu containers

up: provision
	@rc=0; $(VENV)/bin/provision image --env-file $(ENV_FILE) --pull $(PULL) || rc=$$?; \
	if [ $$rc -eq 10 ]; then make --no-print-directory build-$(IMAGE_KIND) ENV_FILE=$(ENV_FILE); \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi
	I2V_ENV_FILE=$(ENV_FILE) $(COMPOSE) $(COMPOSE_ARGS) up -d --wait --wait-timeout $(WAIT_TIMEOUT)

# ---- air-gapped hosts (README "Air-gapped hosts") ----------------------------------------------
bundle: $(STAMP)
	$(VENV)/bin/provision bundle --env-file $(ENV_FILE) $(if $(MODEL),--model $(MODEL)) $(if $(OUT),--out $(OUT))

# The loader needs only the standard library: a host without this checkout's .venv runs it with python3.
load:
	@test -n "$(BUNDLE)" || { echo "usage: make load BUNDLE=path/to/i2v-bundle-....tar" >&2; exit 2; }
	$(if $(wildcard $(PY)),$(PY),python3) -m provision.bundle_load $(BUNDLE) --env-file $(ENV_FILE)

down:
	I2V_ENV_FILE=$(ENV_FILE) $(COMPOSE) $(COMPOSE_ARGS) --profile '*' down

build-cuda:
	$(BAKE) $(BAKE_LOCAL) cuda-$(subst .,-,$(CUDA))

build-cann:
	$(BAKE) $(BAKE_LOCAL) cann-$(subst .,-,$(CANN))-$(CHIP)-$(subst .,-,$(OS))

build-cpu:
	$(BAKE) $(BAKE_LOCAL) cpu

containers: $(STAMP)
	$(PY) scripts/containers.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# ---- the browser test (tests/test_web_browser.py) ----------------------------------------------
# Debian's chromium, driven by Playwright through executable_path (never `playwright install`).
# CI (CI=true, root, clean clone) installs it and enables the test; elsewhere:
#   make chromium && make test PYTEST_ARGS=--run-browser
ifeq ($(CI),true)
export I2V_TEST_BROWSER := 1
test: chromium
endif

# ---- the PostgreSQL tests (tests/pg_server.py) -----------------------------------------------
# The job-store, service and many-host tests also run against a real PostgreSQL server that the
# tests start in a temporary folder on a private port and stop at the end. Debian's postgresql-15
# puts initdb/pg_ctl in /usr/lib/postgresql/15/bin; installed here when missing (root with apt-get),
# without the package's own cluster (createcluster.conf, kept by ucf), so nothing is left running.
# Elsewhere (no root, no apt) those cases are skipped; under CI=true their absence fails the run.
test: postgres

.PHONY: postgres
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		mkdir -p /etc/postgresql-common && \
		{ grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf || \
		  echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf; } && \
		apt-get update -qq && \
		UCF_FORCE_CONFFOLD=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15; \
	else echo "note: no PostgreSQL server binaries (apt-get install postgresql-15): its test cases are skipped"; fi

.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
