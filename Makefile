# One command sets up and tests; a second run installs nothing new.
SHELL := /bin/bash
PY_SYSTEM ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: deps test lint unit demo bench clean

# Debian packages: Pebble (the ACME test CA) and Chromium (browser tests). Installed only when missing.
deps: $(STAMP)
	@missing=""; for p in pebble chromium python3-venv systemd shellcheck; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The venv is built from Debian's Python, not a per-user one: workers and CGIs run as other uids
# and must be able to reach the interpreter (a pyenv Python under /root is not reachable).
$(STAMP): pyproject.toml requirements-test.lock
	@dpkg -s python3-venv >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
	@test -x $(PY) || $(PY_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements-test.lock -e '.[test]'
	@touch $(STAMP)

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -p no:cacheprovider --durations=15

unit: deps
	$(VENV)/bin/pytest -p no:cacheprovider tests/unit

demo: deps
	$(PY) tools/demo.py

# Benchmarks (not tests): they print figures. certbot (the reference) and the profilers live in a
# venv of their own, from Debian's Python, never in $(VENV).
CERTBOT_VENV := bench/.venv-certbot
CERTBOT_STAMP := $(CERTBOT_VENV)/.installed

bench: deps $(CERTBOT_STAMP)
	$(PY) bench/run_all.py --markdown bench/out/table.md

$(CERTBOT_STAMP):
	@test -x $(CERTBOT_VENV)/bin/python || $(PY_SYSTEM) -m venv $(CERTBOT_VENV)
	$(CERTBOT_VENV)/bin/pip install -q --disable-pip-version-check certbot pyinstrument py-spy
	@touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
