# Flat verbs. Every verb that runs Python creates and reuses .venv itself.
# torch is pinned to the CPU build here; the images pin their own CUDA / torch_npu builds.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
TORCH_PIN   ?= torch==2.13.0
STAMP       := $(VENV)/.installed
MODEL       ?=
ENV_FILE    ?= .env

.PHONY: demo test lint serve up down provision detect doctor env clean help

help:
	@echo "make demo       generate a video on CPU with the embedded default (a tiny local model)"
	@echo "make test       run the test suite (CPU)"
	@echo "make up         provision this host, then docker compose up -d --wait"
	@echo "make down       docker compose down"
	@echo "make provision  probe the host and write $(ENV_FILE)"
	@echo "make doctor     check the host and print the fixes"
	@echo "make lint       ruff"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[runtime,nvidia,dev]"
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

up: provision
	docker compose --env-file $(ENV_FILE) up -d --wait

down:
	docker compose --env-file $(ENV_FILE) down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
