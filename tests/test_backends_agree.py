"""Every backend gives the reference result on the core grid."""

from __future__ import annotations

import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv

BACKENDS = ["numpy", "scipy", "pyfftw"]


@pytest.mark.parametrize("shapes", [((17,), (6,)), ((13, 11), (4, 3)), ((6, 5, 7), (3, 2, 3))],
                         ids=str)
@pytest.mark.parametrize("boundary", ["constant", "reflect", "wrap"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("method", ["fft", "overlap-add"])
@pytest.mark.parametrize("dtype", ["float32", "complex128"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_grid(rng, backend, dtype, method, mode, boundary, shapes):
    x = random(rng, shapes[0], dtype)
    k = random(rng, shapes[1], dtype)
    with fftconv.config.set(memory_limit=4000 if method == "overlap-add" else None):
        got = fftconv.convolve(x, k, mode, boundary=boundary, method=method, backend=backend)
    assert_matches(got, reference(x, k, mode, boundary), dtype)
