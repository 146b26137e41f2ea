# Reelforge: the two commands are `make up` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# uv through scripts/uv, which looks for it when a recipe runs (bootstrap may have installed it a moment ago):
# PATH, ~/.local/bin, or beside python3 (where `pip install uv` puts it).
UV ?= $(CURDIR)/scripts/uv
RUN := $(UV) run --frozen
SERVICES := $(patsubst services/%/pyproject.toml,%,$(sort $(wildcard services/*/pyproject.toml)))
# mypy sees every lib and service as a top-level package (common, gateway, ...), as they are imported.
PACKAGE_ROOTS := $(patsubst %/pyproject.toml,%,$(sort $(wildcard libs/*/pyproject.toml services/*/pyproject.toml clients/*/pyproject.toml)))
PACKAGES := $(foreach root,$(PACKAGE_ROOTS),$(notdir $(root)))
EMPTY :=
SPACE := $(EMPTY) $(EMPTY)

# The settings `make up`/`make migrate` run with (honcho reads it); created from .env.example when missing.
ENV_FILE ?= .env

# where `make up` says the stack is, once it answers there (the gateway's port in the Procfile)
UP_URL ?= http://127.0.0.1:8080

# `make test PYTEST_ARGS="-k ledger services/billing"`; PYTEST_WORKERS=0 runs in one process.
PYTEST_ARGS ?=
PYTEST_WORKERS ?= auto
PYTEST_FLAGS := -q --durations=15 -n $(PYTEST_WORKERS) --maxprocesses=8 --dist loadgroup

.PHONY: help up test lint fmt typecheck openapi check-node18 bench bench-gateway bench-streaming bench-billing bench-captions bench-render bench-analysis migrate clean distclean \
	bootstrap sync services deploy-files deploy-check doctor

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

up: $(ENV_FILE) ## bootstrap, migrate, then run every service in the foreground (Ctrl-C stops them)
	@scripts/bootstrap.sh --env-file $(ENV_FILE)
	@$(MAKE) migrate
	@# honcho runs in the foreground; the waiter prints "Reelforge is up" once every process's /healthz answers
	@# (not before the services listen), and ends with this shell ($$$$) if honcho stops first
	@scripts/wait_up.py $(UP_URL) --procfile Procfile --watch-pid $$$$ & $(RUN) honcho start -f Procfile -e $(ENV_FILE)

test: ## bootstrap, then the whole test suite (PYTEST_ARGS, PYTEST_WORKERS)
	@scripts/bootstrap.sh
	$(RUN) pytest $(PYTEST_FLAGS) $(PYTEST_ARGS)

lint: sync ## ruff check, ruff format --check, import contracts (all three run; fails if any fails)
	@rc=0; \
	echo "ruff check"; $(RUN) ruff check . || rc=1; \
	echo "ruff format --check"; $(RUN) ruff format --check . || rc=1; \
	echo "lint-imports"; $(RUN) lint-imports || rc=1; \
	exit $$rc

fmt: sync ## format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: sync ## mypy (libs/common strict, per pyproject.toml) over every lib and service
	MYPYPATH=$(subst $(SPACE),:,$(PACKAGE_ROOTS)) $(RUN) mypy $(addprefix -p ,$(PACKAGES))

bench: bench-gateway bench-streaming bench-billing bench-captions bench-render bench-analysis ## every benchmark

bench-gateway bench-streaming bench-billing bench-captions bench-render bench-analysis: bench-%: bootstrap
	$(RUN) python -m $*.bench

openapi: sync ## rewrite web/openapi.json (the API document the web client is typed from) from the code; commit it
	$(RUN) python scripts/gen_openapi.py web/openapi.json

check-node18: sync ## build the web app with Node 18 (Debian 12's) from the npm registry, in a scratch copy
	@scripts/check_node18.sh

migrate: sync ## apply every service's SQL migrations, in parallel (with the settings in $(ENV_FILE))
	@pids=(); for svc in $(SERVICES); do \
		( $(RUN) honcho run -e $(ENV_FILE) python -m $$svc migrate 2>&1 | sed -u "s/^/[migrate $$svc] /" ) & pids+=($$!); \
	done; \
	rc=0; for pid in "$${pids[@]}"; do wait "$$pid" || rc=1; done; \
	if [ "$$rc" -ne 0 ]; then echo "migrate: FAILED (see above)" >&2; exit 1; fi; \
	echo "migrate: $(words $(SERVICES)) services migrated"

deploy-files: sync ## regenerate Procfile, docker-compose.yml, per-service k8s files (scripts/gen_deploy.py)
	$(RUN) python scripts/gen_deploy.py

deploy-check: sync ## validate docker-compose.yml, k8s manifests, Prometheus rules (no Docker needed)
	$(RUN) pytest -q -p no:cacheprovider -o addopts="" -p common.testing.plugin --import-mode=importlib tests/deploy

clean: ## caches and scratch files (keeps var/storage, var/keys and .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .import_linter_cache var/tmp var/cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## also local data (var/) and the venv
	rm -rf var .venv

bootstrap: ## system packages, uv, .venv, Postgres/RabbitMQ/Redis
	@scripts/bootstrap.sh

services: ## start Postgres/RabbitMQ/Redis when they are not running
	@scripts/ensure-services.sh $(if $(wildcard $(ENV_FILE)),--env-file $(ENV_FILE))

sync:
	@$(UV) sync --all-packages --frozen --quiet

doctor: sync ## the tools make runs with: uv, the venv's Python, the workspace packages
	@echo "uv: $$($(UV) --version)"
	@$(RUN) python -c 'import sys, common; print("python:", sys.version.split()[0], "venv:", sys.prefix)'
	@echo "cli: $$($(RUN) reelforge --version)"

.env:
	cp .env.example .env
	@echo "created .env from .env.example"
