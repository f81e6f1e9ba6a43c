# Everything runs inside .venv, created on first use from PyPI packages only.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,test,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fftconv demo

test: $(STAMP)
	$(BIN)/ruff check fftconv backends tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.regret
	$(BIN)/python -m benchmarks.operations

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
