# Everything runs inside .venv, created on first use from PyPI packages only.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,test,bench,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fftconv demo

test: $(STAMP)
	$(BIN)/ruff check fftconv backends tests benchmarks docs
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.regret
	$(BIN)/python -m benchmarks.operations
	$(BIN)/python -m benchmarks.lines
	$(BIN)/python -m benchmarks.small
	$(BIN)/python -m benchmarks.dask_small
	$(BIN)/python -m benchmarks.dask_bench
	$(BIN)/python -m benchmarks.fft_lengths

# Warnings are errors; the pages' examples run in `make test` (pytest --doctest-glob).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis docs/_build docs/_generated_api
