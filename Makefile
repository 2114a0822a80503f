# One command per job, each working on a fresh machine: it makes a virtual environment, installs
# torch into it, then builds pykernels against that torch (the extension must be compiled
# against the torch it runs with, hence --no-build-isolation).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SOURCES := setup.py pyproject.toml $(shell find csrc -type f)

.PHONY: install test train bench info clean

$(VENV)/.installed: $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel ninja
	$(PY) -m pip install "torch>=2.4"
	$(PY) -m pip install --no-build-isolation -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q tests

train: install
	$(PY) -m pykernels train

bench: install
	$(PY) -m pykernels bench

info: install
	$(PY) -m pykernels info

clean:
	rm -rf build $(VENV) pykernels/*.so *.egg-info
