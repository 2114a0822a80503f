# One command per job, each working on a fresh machine: it makes a virtual environment, installs
# torch into it, then builds pykernels against that torch (the extension must be compiled
# against the torch it runs with, hence --no-build-isolation).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The torch to build and test against: the newest release by default.
TORCH  ?= torch>=2.4.1
# The oldest torch pykernels supports (pyproject.toml's floor), which test-floor builds against.
FLOOR_TORCH := torch==2.4.1
FLOOR_DIR   := build/floor
SOURCES := setup.py pyproject.toml $(shell find csrc -type f)
# The linters, pinned: another version would format or judge the same code differently.
RUFF_VERSION         := 0.17.6
CLANG_FORMAT_VERSION := 23.1.5
CXX_FILES := $(shell find csrc tools/cuda_emu -path csrc/generated -prune -o -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print | sort)

.PHONY: install lint test test-floor emu train bench info clean

$(VENV)/.installed: $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel ninja
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install --no-build-isolation -e ".[test]"
	touch $@

install: $(VENV)/.installed

$(VENV)/.lint-tools: Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install "ruff==$(RUFF_VERSION)" "clang-format==$(CLANG_FORMAT_VERSION)"
	touch $@

# The files generated from the op table are current; ruff's rules and format (pyproject.toml),
# then clang-format (.clang-format) over the C++ and CUDA sources; each reports what it would
# change and changes nothing.
lint: $(VENV)/.lint-tools
	$(PY) tools/gen_ops.py --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/clang-format --dry-run --Werror $(CXX_FILES)

test: install
	$(PY) -m pytest -q tests

# The suite against the oldest supported torch, CPU-only, from a fresh virtual environment in a
# fresh copy of the sources: its in-place build would otherwise replace this checkout's own,
# which is built against another torch.
test-floor:
	rm -rf $(FLOOR_DIR)
	mkdir -p $(FLOOR_DIR)
	cp -R setup.py pyproject.toml MANIFEST.in README.md Makefile csrc pykernels tests tools benchmarks $(FLOOR_DIR)
	rm -f $(FLOOR_DIR)/pykernels/*.so $(FLOOR_DIR)/pykernels/_build_config.py
	PYKERNELS_NO_CUDA=1 $(MAKE) -C $(FLOOR_DIR) test TORCH="$(FLOOR_TORCH)"

# The CUDA kernels on the CPU emulator (tools/cuda_emu), then again under AddressSanitizer: needs
# the CUDA toolkit's headers, not a GPU.
emu: install
	PYTHON=$(PY) sh tools/cuda_emu/run.sh
	PYTHON=$(PY) SANITIZE=1 sh tools/cuda_emu/run.sh

train: install
	$(PY) -m pykernels train

bench: install
	$(PY) -m pykernels bench

info: install
	$(PY) -m pykernels info

clean:
	rm -rf build $(VENV) pykernels/*.so *.egg-info .ruff_cache
