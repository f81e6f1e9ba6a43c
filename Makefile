# Everything runs inside .venv, created on first use from PyPI packages only.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed

.PHONY: demo test test-oldest lint bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,test,bench,docs]'
	touch $(STAMP)

# The lowest versions pyproject.toml allows (.ci/oldest.txt), in a second environment.
$(OLDEST_STAMP): pyproject.toml .ci/oldest.txt
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip
	$(OLDEST)/bin/python -m pip install -q -c .ci/oldest.txt -e '.[all,test]'
	touch $(OLDEST_STAMP)

demo: $(STAMP)
	$(BIN)/fftconv demo

test: $(STAMP)
	$(BIN)/ruff check fftconv backends tests benchmarks docs
	$(BIN)/python -m pytest -q

# The same suite on the oldest dependencies (no ruff: the code is linted by `make test`).
test-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.regret
	$(BIN)/python -m benchmarks.operations
	$(BIN)/python -m benchmarks.lines
	$(BIN)/python -m benchmarks.small
	$(BIN)/python -m benchmarks.dask_small
	$(BIN)/python -m benchmarks.dask_bench
	$(BIN)/python -m benchmarks.fft_lengths
	$(BIN)/python -m benchmarks.dropins
	$(BIN)/python -m benchmarks.opencv

# Warnings are errors; the pages' examples run in `make test` (pytest --doctest-glob).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(OLDEST) build *.egg-info .pytest_cache .hypothesis docs/_build docs/_generated_api
