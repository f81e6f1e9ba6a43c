"""NumPy masked arrays: masked pixels are missing values, never read (fftconv._core.masks)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference
from test_nonfinite import expected_poison

import fftconv

BOUNDARIES = ["constant", "reflect", "mirror", "nearest", "wrap"]


def masked_image(rng, shape=(30, 28), dtype="float32"):
    """A masked image whose masked pixels hold huge values: reading them shows."""
    data = random(rng, shape, dtype)
    mask = rng.random(shape) < 0.04
    data[mask] = 1e6
    return np.ma.masked_array(data, mask=mask)


def expected(image, kernel, mode, boundary, correlate=False):
    """The reference on the unmasked pixels, and the outputs a masked pixel reaches."""
    k = np.conj(np.flip(kernel)) if correlate else kernel
    missing = np.where(image.mask, np.nan, image.data)
    clean = np.where(image.mask, 0, image.data)
    return reference(clean, k, mode, boundary), expected_poison(missing, k, mode, boundary)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
@pytest.mark.parametrize("correlate", [False, True])
def test_masked_pixels_are_never_read(rng, method, mode, boundary, correlate):
    image = masked_image(rng)
    kernel = random(rng, (5, 4), "float32")
    kernel[0, 0] = 0.0  # a zero tap over a masked pixel masks nothing
    run = fftconv.correlate if correlate else fftconv.convolve
    got = run(image, kernel, mode, boundary=boundary, method=method)
    want, reached = expected(image, kernel, mode, boundary, correlate)
    assert isinstance(got, np.ma.MaskedArray) and got.dtype == np.float32
    assert np.array_equal(np.ma.getmaskarray(got), reached)
    assert_matches(got.filled(0), np.where(reached, 0, want), "float32")


def test_interpolate_fills_the_masked_pixels(rng):
    image = masked_image(rng, (40, 40), "float64")
    kernel = random(rng, (5, 5), "float64")
    got = fftconv.convolve(image, kernel, nan_policy="interpolate", boundary="reflect")
    missing = np.where(image.mask, np.nan, image.data)
    assert not np.ma.is_masked(got)
    assert_matches(got.data, fftconv.convolve(missing, kernel, nan_policy="interpolate",
                                              boundary="reflect"), "float64")


def test_raise_counts_the_masked_pixels(rng):
    image = masked_image(rng)
    with pytest.raises(ValueError, match=f"found {image.mask.sum()} non-finite"):
        fftconv.convolve(image, np.ones((3, 3)), nan_policy="raise")


def test_integer_image_is_filled_in_its_result_dtype():
    image = np.ma.masked_array(np.arange(6, dtype=np.uint16), mask=[0, 0, 0, 1, 0, 0])
    got = fftconv.convolve(image, np.ones(3, np.float32))
    assert got.dtype == np.float32
    assert got.mask.tolist() == [False, False, True, True, True, False]
    assert got.compressed().tolist() == [1.0, 3.0, 9.0]


def test_nothing_masked_is_plain_data_in_a_masked_array(rng):
    data = random(rng, (12, 12), "float64")
    got = fftconv.convolve(np.ma.masked_array(data), np.ones((3, 3)))
    assert isinstance(got, np.ma.MaskedArray) and not np.ma.is_masked(got)
    assert_matches(got.data, reference(data, np.ones((3, 3))), "float64")


def test_the_callers_array_is_untouched(rng):
    image = masked_image(rng)
    before = image.data.copy(), image.mask.copy()
    fftconv.convolve(image, np.ones((3, 3), np.float32))
    assert np.array_equal(image.data, before[0]) and np.array_equal(image.mask, before[1])


def test_convolver_and_window_sum_take_masks(rng):
    image = masked_image(rng, dtype="float64")
    kernel = random(rng, (3, 3), "float64")
    want, reached = expected(image, kernel, "same", "reflect")
    got = fftconv.Convolver(kernel, boundary="reflect")(image)
    assert np.array_equal(np.ma.getmaskarray(got), reached)
    assert_matches(got.filled(0), np.where(reached, 0, want), "float64")
    box = np.ones((3, 5))
    sums = fftconv.window_sum(image, (3, 5), boundary="reflect")
    want, reached = expected(image, box, "same", "reflect")
    assert np.array_equal(np.ma.getmaskarray(sums), reached)
    assert_matches(sums.filled(0), np.where(reached, 0, want), "float64")


@pytest.mark.parametrize("chunks", [7, 30])
def test_dask_masked_blocks_give_a_lazy_masked_result(rng, chunks):
    image = masked_image(rng, dtype="float64")
    kernel = random(rng, (5, 4), "float64")
    lazy = da.ma.masked_array(da.from_array(image.data, chunks=chunks),
                              mask=da.from_array(image.mask, chunks=chunks))
    got = fftconv.convolve(lazy, kernel, boundary="mirror")
    assert isinstance(got, da.Array) and isinstance(got._meta, np.ma.MaskedArray)
    computed = got.compute()
    want, reached = expected(image, kernel, "same", "mirror")
    assert np.array_equal(np.ma.getmaskarray(computed), reached)
    assert_matches(computed.filled(0), np.where(reached, 0, want), "float64")


@pytest.mark.parametrize("call", [
    lambda m, x: fftconv.convolve(x, m[:3, :3]),
    lambda m, x: fftconv.Convolver(m[:3, :3]),
    lambda m, x: fftconv.match_template(m, x[:3, :3]),
    lambda m, x: fftconv.match_template(x, m[:3, :3]),
    lambda m, x: fftconv.convolve_vjp(m, x[:3, :3], x),
    lambda m, x: fftconv.correlate_vjp(x, x[:3, :3], m),
    lambda m, x: fftconv.estimate_kernel(x, m, (3, 3)),
    lambda m, x: fftconv.estimate_kernel(m, x, (3, 3)),
], ids=["kernel", "convolver-kernel", "template-image", "template", "vjp-image",
        "vjp-cotangent", "estimate-output", "estimate-image"])
def test_masks_without_a_meaning_are_refused(call):
    x = np.ones((6, 6))
    m = np.ma.masked_array(x, mask=np.eye(6, dtype=bool))
    with pytest.raises(TypeError, match="is a masked array with"):
        call(m, x)


def test_a_masked_dask_kernel_is_refused():
    kernel = da.ma.masked_array(da.ones((3, 3), chunks=3), mask=da.eye(3, chunks=3, dtype=bool))
    with pytest.raises(TypeError, match="kernel is a dask array of masked blocks"):
        fftconv.convolve(np.ones((6, 6)), kernel)
