# Two commands for a fresh clone: `make demo` (set up and triage the sample tickets) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test setup install clean benchmarks

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch 2.13.0 is the CPU build; any other version pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[transformers,e5,serve,dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/triage demo

test: setup
	$(PY) -m pytest -q

benchmarks: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
