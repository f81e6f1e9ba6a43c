"""Algebraic laws of convolution, checked by hypothesis on every method."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fftconv

METHODS = st.sampled_from(["direct", "fft", "overlap-add", "auto"])
MODES = st.sampled_from(["full", "same"])
BOUNDARIES = st.sampled_from(["constant", "reflect", "mirror", "nearest", "wrap"])
values = st.floats(-1, 1, allow_nan=False, width=64)


def arrays_2d(max_side):
    shape = st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    return arrays(np.float64, shape, elements=values)


def close(a, b):
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1.0)
    np.testing.assert_allclose(a, b, atol=1e-10 * scale, rtol=0)


@settings(max_examples=40, deadline=None)
@given(x=arrays_2d(12), k=arrays_2d(5), a=values, b=values, method=METHODS, mode=MODES,
       boundary=BOUNDARIES)
def test_linearity(x, k, a, b, method, mode, boundary):
    y = np.flip(x) * 0.5
    lhs = fftconv.convolve(a * x + b * y, k, mode, boundary=boundary, method=method)
    rhs = (a * fftconv.convolve(x, k, mode, boundary=boundary, method=method)
           + b * fftconv.convolve(y, k, mode, boundary=boundary, method=method))
    close(lhs, rhs)


@settings(max_examples=40, deadline=None)
@given(x=arrays_2d(12), method=METHODS, boundary=BOUNDARIES,
       ky=st.integers(0, 4), kx=st.integers(0, 4))
def test_delta_is_identity(x, method, boundary, ky, kx):
    delta = np.zeros((2 * ky + 1, 2 * kx + 1))
    delta[ky, kx] = 1.0
    close(fftconv.convolve(x, delta, "same", boundary=boundary, method=method), x)


@settings(max_examples=40, deadline=None)
@given(x=arrays_2d(12), k=arrays_2d(6), method=METHODS, mode=MODES, boundary=BOUNDARIES)
def test_correlate_is_convolve_with_flipped_kernel(x, k, method, mode, boundary):
    close(fftconv.correlate(x, k, mode, boundary=boundary, method=method),
          fftconv.convolve(x, np.flip(k), mode, boundary=boundary, method=method))


@settings(max_examples=40, deadline=None)
@given(x=arrays_2d(10), k=arrays_2d(10), method=METHODS)
def test_full_convolution_commutes(x, k, method):
    close(fftconv.convolve(x, k, "full", method=method),
          fftconv.convolve(k, x, "full", method=method))


@settings(max_examples=25, deadline=None)
@given(x=arrays_2d(30), k=arrays_2d(7), mode=MODES, boundary=BOUNDARIES,
       limit=st.integers(2_000, 40_000))
def test_tiled_equals_untiled(x, k, mode, boundary, limit):
    whole = fftconv.convolve(x, k, mode, boundary=boundary, method="fft")
    with fftconv.config.set(memory_limit=limit):
        tiled = fftconv.convolve(x, k, mode, boundary=boundary, method="overlap-add")
    close(tiled, whole)
