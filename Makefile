# The README's commands. Every target installs what it needs into venvs inside the checkout.
#   make test   - lint, type-check and run the whole test suite (Airflow 3.3, then the 3.1 floor)
#   make check  - the same on Airflow 3.3 only (quicker, for development)
#   make bench  - the benchmarks' table (BENCH_ARGS=--quick for a short run)

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
AIRFLOW_FLOOR ?= 3.1.0
PYGEOAPI_VERSION ?= 0.21.0
WRAPTILE_VERSION ?= 0.3.0
# tests/production: CeleryExecutor on PostgreSQL (Redis broker; Airflow talks to PostgreSQL through
# psycopg2 and, for its async engine, asyncpg). Each Airflow gets the celery provider
# of its own time: 3.12.3 is what Airflow 3.1.0's constraints pin; 3.26.0 is current for 3.3.
CELERY_PROVIDER_VERSION ?= 3.26.0
CELERY_PROVIDER_FLOOR ?= 3.12.3
# The [openlineage] and [ui] extras: current in the main venv; the floor venv gets their declared floors
# (lowest-direct, so rasterio 1.4.0 serves the jobs page's quick-looks there).
OPENLINEAGE_PROVIDER_VERSION ?= 2.20.3
PSYCOPG2_VERSION ?= 2.9.11
ASYNCPG_VERSION ?= 0.31.0
# celery 5.7 dropped celery.backends.database.retry, which both celery providers import.
CELERY_VERSION ?= 5.6.3
# The dev stack's STAC API (.venv-stac): stac-fastapi-pgstac 7.1+ supports pgstac >=0.9.2,<0.11 (its
# README's compatibility table); pypgstac 0.10.0 migrates the database to pgstac 0.10.0, inside that
# range. The [server] extra pins uvicorn (0.38.0); [psycopg] is pypgstac's driver (the API uses asyncpg).
STAC_FASTAPI_PGSTAC_VERSION ?= 7.2.0
PYPGSTAC_VERSION ?= 0.10.0
PIP_FLAGS ?= --quiet --disable-pip-version-check
# pip warns once per package about this machine's absent local index folders; keep real messages.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
PYTEST_ARGS ?=

VENV := .venv
VENV_FLOOR := .venv-airflow-floor
# uv builds the floor venv: pip can neither pick the lowest allowed versions nor ignore releases
# newer than a date. It lives in its own venv (pinned, from the package index like everything else).
UV_VERSION ?= 0.13.9
UV := .venv-uv/bin/uv
# Airflow 3.1.0 was uploaded on 2025-09-25 at 20:31 UTC: the floor venv sees the index as it was at
# the end of that day, so what Airflow 3.1.0 does not pin resolves as it did for its first users.
AIRFLOW_FLOOR_DATE ?= 2025-09-26T00:00:00Z
# Direct dependencies that test-floor shows without requiring them at their declared floor (none today).
FLOOR_UNCHECKED ?=
ARTIFACTS := .artifacts

export OGC_TEST_PYGEOAPI_BIN := $(CURDIR)/.venv-pygeoapi/bin
export OGC_TEST_WRAPTILE_BIN := $(CURDIR)/.venv-wraptile/bin
export OGC_TEST_STAC_BIN := $(CURDIR)/.venv-stac/bin

.PHONY: demo test check bench lint test-main test-floor servers browser system-packages postgis clean

# The main job: the seed's water-bodies scenario from an Airflow DAG against the local stack,
# checked against the synthetic scenes' known lakes (exits non-zero on disagreement).
demo: $(VENV)/.stamp .venv-pygeoapi/.stamp .venv-stac/.stamp postgis
	$(VENV)/bin/python -m dev.demo

test: lint test-main test-floor

# Every figure beside its baseline, measured in the same run (about 20 minutes on 2 cores).
BENCH_ARGS ?=
bench: $(VENV)/.stamp servers
	$(VENV)/bin/python -m benchmarks $(BENCH_ARGS)

check: lint test-main

# Each venv is rebuilt when the file that pins it changes (a stamp inside records the build).
$(VENV)/.stamp: pyproject.toml Makefile dev/requirements-demo.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "Python >= 3.10 needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[dev,openlineage,ui]" "apache-airflow==$(AIRFLOW_VERSION)" \
		"apache-airflow-providers-openlineage==$(OPENLINEAGE_PROVIDER_VERSION)" \
		"apache-airflow-providers-celery==$(CELERY_PROVIDER_VERSION)" "psycopg2-binary==$(PSYCOPG2_VERSION)" "asyncpg==$(ASYNCPG_VERSION)" "celery[redis]==$(CELERY_VERSION)" \
		-r dev/requirements-demo.txt $(QUIET_PIP)
	touch $@

.venv-uv/.stamp: Makefile
	$(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install $(PIP_FLAGS) "uv==$(UV_VERSION)" $(QUIET_PIP)
	touch $@

# The oldest versions we declare, built afresh: first Airflow $(AIRFLOW_FLOOR) and our direct runtime
# dependencies at the lowest versions pyproject allows (lowest-direct), everything they pull in as of
# AIRFLOW_FLOOR_DATE (deterministic); then the test tools and demo extras, resolved like the main
# venv's (newest), moving nothing the first step installed.
$(VENV_FLOOR)/.stamp: pyproject.toml Makefile .ci/constraints-airflow-floor.txt dev/requirements-demo.txt .venv-uv/.stamp
	rm -rf $(VENV_FLOOR)
	$(PYTHON) -m venv $(VENV_FLOOR)
	$(UV) pip install --quiet --python $(VENV_FLOOR)/bin/python --exclude-newer $(AIRFLOW_FLOOR_DATE) \
		--resolution lowest-direct -c .ci/constraints-airflow-floor.txt -e ".[openlineage,ui]" "apache-airflow==$(AIRFLOW_FLOOR)"
	$(UV) pip freeze --quiet --python $(VENV_FLOOR)/bin/python --exclude-editable > $(VENV_FLOOR)/runtime-pins.txt
	$(UV) pip install --quiet --python $(VENV_FLOOR)/bin/python -c $(VENV_FLOOR)/runtime-pins.txt \
		-e ".[test]" -r dev/requirements-demo.txt "apache-airflow-providers-celery==$(CELERY_PROVIDER_FLOOR)" \
		"psycopg2-binary==$(PSYCOPG2_VERSION)" "asyncpg==$(ASYNCPG_VERSION)" "celery[redis]==$(CELERY_VERSION)"
	touch $@

.venv-pygeoapi/.stamp: Makefile dev/requirements-pygeoapi.txt
	$(PYTHON) -m venv .venv-pygeoapi
	.venv-pygeoapi/bin/pip install $(PIP_FLAGS) "pygeoapi==$(PYGEOAPI_VERSION)" tinydb -r dev/requirements-pygeoapi.txt $(QUIET_PIP)
	touch $@

.venv-wraptile/.stamp: Makefile dev/requirements-part2.txt
	$(PYTHON) -m venv .venv-wraptile
	.venv-wraptile/bin/pip install $(PIP_FLAGS) "wraptile==$(WRAPTILE_VERSION)" -r dev/requirements-part2.txt $(QUIET_PIP)
	touch $@

.venv-stac/.stamp: Makefile
	$(PYTHON) -m venv .venv-stac
	.venv-stac/bin/pip install $(PIP_FLAGS) "stac-fastapi-pgstac[server]==$(STAC_FASTAPI_PGSTAC_VERSION)" \
		"pypgstac[psycopg]==$(PYPGSTAC_VERSION)" $(QUIET_PIP)
	touch $@

servers: .venv-pygeoapi/.stamp .venv-wraptile/.stamp .venv-stac/.stamp

# Debian packages, installed (one apt-get update) when missing and root or sudo works: chromium and
# chromedriver for tests/ui (selenium never downloads a browser), PostgreSQL 15 with PostGIS 3 for the
# dev stack's STAC API (pgstac) and as tests/production's metadata database, Redis 7 as its Celery
# broker. Without root or sudo the tests that need them skip locally; in CI (CI=true) they fail.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
PG_PACKAGES := /usr/lib/postgresql/15/bin/initdb:postgresql-15 \
	/usr/share/postgresql/15/extension/postgis.control:postgresql-15-postgis-3
DEBIAN_PACKAGES := $(PG_PACKAGES) /usr/bin/chromium:chromium /usr/bin/chromedriver:chromium-driver \
	/usr/bin/redis-server:redis-server
# $(call apt_ensure,path:package ...): install the packages whose path is missing.
define apt_ensure
	@missing="$$(for pair in $(1); do [ -e "$${pair%%:*}" ] || echo "$${pair##*:}"; done)"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
			echo "installing" $$missing "(apt-get)"; \
			$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				$$missing >/dev/null; \
		else echo "not installed and no root: $$(echo $$missing); the tests that need them will skip"; fi; \
	fi
endef
system-packages:
	$(call apt_ensure,$(DEBIAN_PACKAGES))
postgis:
	$(call apt_ensure,$(PG_PACKAGES))
browser: system-packages

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# A fresh Airflow home per run: tests never see state from an earlier run or from ~/airflow.
test-main: $(VENV)/.stamp servers system-packages
	rm -rf $(ARTIFACTS)/airflow-home && mkdir -p $(ARTIFACTS)/airflow-home
	AIRFLOW_HOME=$(CURDIR)/$(ARTIFACTS)/airflow-home $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The benchmarks' smoke tests run in the main venv only: `make bench` runs there and nowhere else.
test-floor: $(VENV_FLOOR)/.stamp servers system-packages
	rm -rf $(ARTIFACTS)/airflow-home-floor && mkdir -p $(ARTIFACTS)/airflow-home-floor
	$(VENV_FLOOR)/bin/python .ci/floor_versions.py $(FLOOR_UNCHECKED)
	AIRFLOW_HOME=$(CURDIR)/$(ARTIFACTS)/airflow-home-floor $(VENV_FLOOR)/bin/python -m pytest -m "not benchmark" $(PYTEST_ARGS)

# The local water-bodies stack (moto S3, synthetic Landsat scenes, PostgreSQL + pgstac + stac-fastapi,
# pygeoapi water-bodies) on 127.0.0.1.
STACK_DIR := $(ARTIFACTS)/dev-stack
.PHONY: stack-up stack-down stack-status
stack-up: $(VENV)/.stamp servers postgis
	$(VENV)/bin/python -m dev.stack up --workdir $(STACK_DIR)
stack-down:
	$(VENV)/bin/python -m dev.stack down --workdir $(STACK_DIR)
stack-status:
	$(VENV)/bin/python -m dev.stack status --workdir $(STACK_DIR)

clean:
	-[ -x $(VENV)/bin/python ] && $(VENV)/bin/python -m dev.stack down --workdir $(STACK_DIR)
	rm -rf $(VENV) $(VENV_FLOOR) .venv-uv .venv-pygeoapi .venv-wraptile .venv-stac $(ARTIFACTS) .pytest_cache .mypy_cache .ruff_cache
