# Set-up and entry points. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Runtime only (numpy, scipy, numba, opencv): enough for the geometry and the demo.
# ... then compile the Numba kernels into the on-disk cache, two groups in two processes, so
# that the first call does not wait minutes for compilation (learn/warmup.py).
# --no-compile: pip would byte-compile every installed module (≈ 15 s of CPU, mostly plotly's
# thousands of files); Python compiles the few that are imported on first use instead.
$(VENV)/.base: $(BIN)/python setup.py
	$(PIP) install -q --no-compile -e .
	$(BIN)/python -m learn.warmup --jobs 2
	touch $@

# Everything the tests need. torch first, pinned to the CPU wheel on local disk,
# so that kornia's unpinned torch requirement never pulls a CUDA build.
$(VENV)/.full: $(VENV)/.base
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[gpu,dev,detect,dask]"
	touch $@

demo: $(VENV)/.base
	$(BIN)/epigeo demo

test: $(VENV)/.full
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(VENV)/.full
	-$(PIP) install -q -e ".[bench]"
	$(BIN)/python -m benchmarks all --quick

clean:
	rm -rf $(VENV) build *.egg-info
