"""Dask tiles convolved in reused per-thread buffers (``rfftn_into`` / ``irfftn_into``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv
from fftconv import _workspace
from fftconv._registry import load_backend

da = pytest.importorskip("dask.array")


@pytest.fixture
def scipy_backend():
    backend = load_backend("scipy")
    if not hasattr(backend, "rfftn_into"):
        pytest.skip("this scipy's pocketfft binding has no out=")
    return backend


@pytest.mark.parametrize("shape, axes", [((10,), (0,)), ((9, 12), (0, 1)), ((9, 12), (1,)),
                                         ((5, 7, 6), (0, 2)), ((4, 6, 5), (2, 1, 0))], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scipy_into_methods_match_scipy_fft(rng, scipy_backend, shape, axes, dtype):
    import scipy.fft

    x = random(rng, shape, dtype)
    spectrum_shape = list(shape)
    spectrum_shape[axes[-1]] = shape[axes[-1]] // 2 + 1
    spectrum = np.full(spectrum_shape, np.nan, np.result_type(dtype, np.complex64))
    kept = x.copy()
    scipy_backend.rfftn_into(x, spectrum, axes, 1)
    assert np.array_equal(x, kept)
    expected = scipy.fft.rfftn(x, axes=axes)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(spectrum, expected, atol=tol * np.abs(expected).max())
    back = np.full(shape, np.nan, dtype)
    scipy_backend.irfftn_into(spectrum, back, axes, 1)
    np.testing.assert_allclose(back, x, atol=tol)
    assert back.dtype == np.dtype(dtype)


def _spy(monkeypatch, backend) -> list:
    calls = []
    original = backend.rfftn_into

    def counted(*args, **kwargs):
        calls.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(backend, "rfftn_into", counted)
    return calls


@pytest.mark.parametrize("boundary", ["constant", "reflect", "wrap"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("kshape", [(9, 7), (8, 6)], ids=["odd", "even"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tiles_in_reused_buffers_match_reference(rng, monkeypatch, scipy_backend, dtype,
                                                 kshape, mode, boundary):
    calls = _spy(monkeypatch, scipy_backend)
    x = random(rng, (61, 47), dtype)
    k = random(rng, kshape, dtype)
    lazy = fftconv.convolve(da.from_array(x, chunks=(20, 16)), k, mode, boundary=boundary,
                            method="fft", backend="scipy")
    got = lazy.compute(scheduler="threads")
    assert got.dtype == np.dtype(dtype)
    assert_matches(got, reference(x, k, mode, boundary), dtype)
    assert len(calls) == lazy.npartitions  # every tile went through the reused buffers


def test_channel_axis_and_broadcast_kernel(rng, monkeypatch, scipy_backend):
    calls = _spy(monkeypatch, scipy_backend)
    x = random(rng, (30, 26, 3), "float32")
    k = random(rng, (7, 5, 1), "float32")
    got = fftconv.correlate(da.from_array(x, chunks=(11, 9, 3)), k, boundary="mirror",
                            method="fft", backend="scipy", axes=(0, 1))
    assert_matches(got.compute(), reference(x, k, "same", "mirror", correlate=True,
                                            axes=(0, 1)), "float32")
    assert calls


@pytest.mark.parametrize("nan_policy", ["propagate", "interpolate"])
def test_non_finite_tiles_take_the_general_path(rng, monkeypatch, scipy_backend, nan_policy):
    calls = _spy(monkeypatch, scipy_backend)
    x = random(rng, (48, 48), "float64")
    x[5, 7] = np.nan
    x[40, 30] = np.inf
    k = random(rng, (7, 7), "float64") + 2.0
    image = da.from_array(x, chunks=16)
    got = fftconv.convolve(image, k, boundary="reflect", method="fft", backend="scipy",
                           nan_policy=nan_policy).compute(scheduler="sync")
    expected = fftconv.convolve(x, k, boundary="reflect", method="fft", backend="scipy",
                                nan_policy=nan_policy)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.isnan(got).any() == (nan_policy == "propagate")
    finite = ~np.isnan(expected)
    assert_matches(got[finite], expected[finite], "float64")
    assert 0 < len(calls) < image.npartitions  # only the finite tiles used the buffers


def test_backend_without_the_optional_methods(rng, monkeypatch):
    numpy_backend = load_backend("numpy")
    assert not hasattr(numpy_backend, "rfftn_into")
    x = random(rng, (40, 36), "float32")
    k = random(rng, (9, 9), "float32")
    got = fftconv.convolve(da.from_array(x, chunks=13), k, boundary="nearest", method="fft",
                           backend="numpy").compute()
    assert_matches(got, reference(x, k, "same", "nearest"), "float32")


def test_buffers_are_reused_per_thread_and_replaced_per_shape():
    real, spectrum = _workspace.buffers((6, 8), (6, 5), np.dtype("float64"))
    again = _workspace.buffers((6, 8), (6, 5), np.dtype("float64"))
    assert again[0] is real and again[1] is spectrum and spectrum.dtype == np.complex128
    other = []
    thread = threading.Thread(target=lambda: other.append(
        _workspace.buffers((6, 8), (6, 5), np.dtype("float64"))[0]))
    thread.start()
    thread.join()
    assert other[0] is not real
    resized = _workspace.buffers((7, 8), (7, 5), np.dtype("float64"))
    assert resized[0].shape == (7, 8) and resized[0] is not real
    _workspace.release()
    assert _workspace.buffers((7, 8), (7, 5), np.dtype("float64"))[0] is not resized[0]
    _workspace.release()
