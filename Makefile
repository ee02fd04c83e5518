# Two commands do all the set-up on a fresh machine:
#   make quickstart   generate a small spoken-keyword set, train, export, check parity, benchmark, predict
#   make test         run the test suite (what CI runs through .ci/run)
#   make test-fast    the same without the tests marked slow (compiles, training, hour-long audio): minutes
# Everything lives in .venv; torch is pinned explicitly because a bare "torch" requirement lets
# pip pull a multi-GB CUDA build where a CPU wheel is wanted.

PYTHON        ?= python3
VENV          ?= .venv
TORCH_VERSION ?= 2.13.0
PY            := $(VENV)/bin/python
PIP           := $(PY) -m pip --disable-pip-version-check
SUDO          := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PKGS   := espeak-ng nlohmann-json3-dev cmake g++

.PHONY: setup system-deps test test-fast quickstart lint clean

setup: $(VENV)/.installed

# espeak-ng voices the quickstart keywords; nlohmann-json and cmake build the C++ library.
system-deps:
	@missing=""; for p in $(DEBIAN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e '.[dev]'
	# tritonserver for 'ast-deploy serve' and its tests: only the bundled binary is used (docs/serving.md)
	$(PIP) install -q --no-deps nvidia-pytriton==0.7.0
	touch $@

# One pytest-xdist worker per core, each given whole test modules, the longest first (tests/conftest.py:
# LONGEST_FIRST); --durations: the slowest tests of the run, in its report. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= auto
XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: setup
	$(VENV)/bin/ruff check ast_deploy training benchmarks tests
	$(VENV)/bin/ruff format --check ast_deploy training benchmarks tests
	$(PY) -m pytest -q $(XDIST) --durations=25

# Leaves out the tests marked slow (tests/conftest.py says which): about a minute on 2 cores.
test-fast: setup
	$(VENV)/bin/ruff check ast_deploy training benchmarks tests
	$(VENV)/bin/ruff format --check ast_deploy training benchmarks tests
	$(PY) -m pytest -q $(XDIST) -m "not slow" --durations=25

quickstart: setup
	$(VENV)/bin/ast-deploy quickstart --out runs/quickstart

lint: setup
	$(VENV)/bin/ruff check ast_deploy training benchmarks tests
	$(VENV)/bin/ruff format --check ast_deploy training benchmarks tests

clean:
	rm -rf $(VENV) runs build cpp/build *.egg-info
