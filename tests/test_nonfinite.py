"""nan_policy (SPEC §1.4): the same answer on every method, NaN kept local."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv

METHODS = ["direct", "fft", "overlap-add", "auto"]
BOUNDARIES = ["constant", "reflect", "mirror", "nearest", "wrap"]


def expected_poison(x, k, mode, boundary, axes=None):
    """Outputs whose window holds a non-finite input under a non-zero tap."""
    bad = (~np.isfinite(x)).astype(float)
    return reference(bad, (k != 0).astype(float), mode, boundary, axes=axes) > 0.5


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_propagate_is_local(rng, method, mode, boundary, bad):
    x = random(rng, (30, 28), "float32")
    x[5, 7] = bad
    x[20, 0] = np.nan
    k = random(rng, (5, 4), "float32")
    k[0, 0] = 0.0  # a zero tap over a NaN must not poison the output
    got = fftconv.convolve(x, k, mode, boundary=boundary, method=method)
    poison = expected_poison(x, k, mode, boundary)
    assert np.array_equal(np.isnan(got), poison)
    clean = np.where(np.isfinite(x), x, 0)
    assert_matches(np.where(poison, 0, got), np.where(poison, 0, reference(clean, k, mode,
                                                                           boundary)), "float32")


@pytest.mark.parametrize("method", METHODS)
def test_nan_cval_poisons_the_border(rng, method):
    x = random(rng, (12, 12), "float64")
    k = random(rng, (3, 3), "float64")
    got = fftconv.convolve(x, k, "same", cval=np.nan, method=method)
    assert np.isnan(got[0]).all() and np.isnan(got[:, -1]).all()
    assert np.isfinite(got[1:-1, 1:-1]).all()


@pytest.mark.parametrize("method", METHODS)
def test_nonfinite_kernel_poisons_everything(rng, method):
    x = random(rng, (8, 8), "float64")
    k = random(rng, (3, 3), "float64")
    k[1, 1] = np.nan
    assert np.isnan(fftconv.convolve(x, k, method=method)).all()


def test_raise_counts(rng):
    x = random(rng, (10, 10), "float64")
    x[1, 1] = np.nan
    x[2, 2] = np.inf
    with pytest.raises(ValueError, match="2 non-finite"):
        fftconv.convolve(x, np.ones((3, 3)), nan_policy="raise")
    fftconv.convolve(np.ones((4, 4)), np.ones((3, 3)), nan_policy="raise")


def _normalized_reference(x, k, mode, boundary):
    """The border of a constant boundary is known data (cval), so the mask extends with 1."""
    known = np.isfinite(x)
    num = reference(np.where(known, x, 0), k, mode, boundary)
    den = reference(known.astype(float), k, mode, boundary, cval=1.0)
    seen = reference(known.astype(float), (k != 0).astype(float), mode, boundary,
                     cval=1.0) > 0.5
    with np.errstate(all="ignore"):
        out = num / den * k.sum()
    return np.where(seen, out, np.nan)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("method", METHODS)
def test_interpolate(rng, method, boundary):
    x = random(rng, (25, 21), "float64")
    x[3:6, 4:9] = np.nan
    k = rng.uniform(0.5, 1, (5, 3))
    got = fftconv.convolve(x, k, "same", boundary=boundary, method=method,
                           nan_policy="interpolate")
    expected = _normalized_reference(x, k, "same", boundary)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)],
                               rtol=1e-9, atol=1e-11)


def test_interpolate_without_nan_equals_propagate(rng):
    x = random(rng, (15, 15), "float32")
    k = rng.uniform(0.5, 1, (3, 3)).astype(np.float32)
    np.testing.assert_allclose(fftconv.convolve(x, k, nan_policy="interpolate"),
                               fftconv.convolve(x, k), rtol=1e-6)


def test_interpolate_fills_a_hole_of_a_smooth_image():
    x = np.full((20, 20), 3.0)
    x[10, 10] = np.nan
    got = fftconv.convolve(x, np.ones((3, 3)), boundary="nearest", nan_policy="interpolate")
    np.testing.assert_allclose(got, 27.0)  # rescaled by sum(k): the plain convolution of 3s


def test_interpolate_needs_kernel_sum():
    with pytest.raises(ValueError, match="sum"):
        fftconv.convolve(np.ones((5, 5)), [[1.0, -1.0]], nan_policy="interpolate")


def test_interpolate_all_missing_window_is_nan():
    x = np.ones((9, 9))
    x[:, 3:6] = np.nan
    got = fftconv.convolve(x, np.ones((1, 3)), nan_policy="interpolate")
    assert np.isnan(got[:, 4]).all() and np.isfinite(got[:, 3]).all()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "complex64", "complex128",
                                   "longdouble"])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "fortran"])
def test_has_nonfinite_finds_every_kind_in_every_layout(rng, dtype, layout):
    """The quick total (a dot product, or a sum) never hides a NaN or an infinity, and a
    total that overflows on finite values does not make them non-finite."""
    from fftconv._core.nonfinite import has_nonfinite

    def laid_out(a):
        return {"contiguous": a, "strided": a[:, ::2], "fortran": np.asfortranarray(a)}[layout]

    base = random(rng, (6, 10), dtype)
    assert not has_nonfinite(laid_out(base))
    big = np.full((6, 10), np.finfo(np.dtype(dtype)).max / 2, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflowing total is silent, as it is harmless
        assert not has_nonfinite(laid_out(big))  # |x|² and the sum overflow; x is finite
    for bad in (np.nan, np.inf, -np.inf):
        for value in ([bad, 1j * bad] if np.dtype(dtype).kind == "c" else [bad]):
            a = base.copy()
            a[3, 4] = value
            assert has_nonfinite(laid_out(a))
