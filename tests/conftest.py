import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

# Tests measure nothing: keep FFTW planning cheap and never touch the user's files.
os.environ.setdefault("FFTCONV_PLANNER_EFFORT", "estimate")


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory, monkeypatch):
    """No user config file or wisdom leaks into tests."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for key in list(os.environ):
        if key.startswith("FFTCONV_") and key != "FFTCONV_PLANNER_EFFORT":
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _blocks_follow_chunks(monkeypatch):
    """Dask blocks merge small chunks to ~1 Mi pixels: the tests' small images would be
    one block each, and the tiling would go untested.  Tests of the merge set their own."""
    try:
        from fftconv import _dask
    except ImportError:  # no dask installed: nothing tiles
        return
    monkeypatch.setattr(_dask, "BLOCK_ELEMENTS", 1)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.uniform(-1, 1, shape) + 1j * rng.uniform(-1, 1, shape)).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 50, shape).astype(dtype)
    return rng.uniform(-1, 1, shape).astype(dtype)
