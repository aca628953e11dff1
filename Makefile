# Two entry points, both safe on a fresh machine: they create .venv/ and install
# siteplan with its pinned-range dependencies first (again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench clean-maps

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

run: $(VENV)/.installed  ## run every stage on the bundled default study -> maps/
	$(VENV)/bin/siteplan run

test: $(VENV)/.installed  ## the test suite (browser tests skip without Chromium)
	$(PY) -m pytest

bench: $(VENV)/.installed  ## benchmarks (minutes); results go to bench/RESULTS.md by hand
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/bench_zonal.py
	$(PY) bench/bench_network.py
	$(PY) bench/bench_map.py

clean-maps:  ## remove generated maps and stage outputs
	rm -rf maps/index.html maps/sites.* maps/comparison.* maps/figures maps/stages maps/.siteplan
