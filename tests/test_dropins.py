"""``fftconv.ndimage`` and ``fftconv.signal`` give scipy's numbers, dtypes and errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fftconv import ndimage as ours

ndi = pytest.importorskip("scipy.ndimage")
MODES = ["reflect", "grid-mirror", "mirror", "nearest", "wrap", "grid-wrap", "constant",
         "grid-constant"]
DTYPES = ["float32", "float64", "uint16"]


def _image(rng, shape, dtype):
    x = rng.uniform(0, 1000, shape)
    return x.astype(dtype)


def _close(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype.kind in "iu":
        # Both cut toward zero: a sum a rounding away from an integer may land either side.
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= 1
    else:
        tol = 2e-4 if want.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 5), (6, 4)])
def test_convolve_and_correlate_are_ndimages(rng, dtype, mode, shape):
    x = _image(rng, (17, 14), dtype)
    w = rng.uniform(-1, 1, shape)
    for origin in {(0, 0), (-(shape[0] // 2), (shape[1] - 1) // 2)}:
        for name in ("convolve", "correlate"):
            got = getattr(ours, name)(x, w, mode=mode, cval=3.5, origin=origin)
            want = getattr(ndi, name)(x, w, mode=mode, cval=3.5, origin=origin)
            _close(got, want)


@pytest.mark.parametrize("name", ["convolve1d", "correlate1d"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("taps, origin", [(3, 0), (4, 0), (4, -2), (5, 2), (1, 0)])
def test_one_dimensional_filters_are_ndimages(rng, name, mode, taps, origin):
    x = _image(rng, (9, 13), "float64")
    w = rng.uniform(-1, 1, taps)
    for axis in (0, -1):
        _close(getattr(ours, name)(x, w, axis=axis, mode=mode, origin=origin),
               getattr(ndi, name)(x, w, axis=axis, mode=mode, origin=origin))


@pytest.mark.parametrize("dtype", [*DTYPES, "uint8", "int16"])
@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap", "mirror"])
def test_gaussian_and_uniform_filters_are_ndimages(rng, dtype, mode):
    x = _image(rng, (20, 23), dtype) if dtype != "int16" else \
        rng.integers(-500, 500, (20, 23)).astype(dtype)
    for sigma, order in ((1.5, 0), ((0.8, 2.5), 0), ((2.0, 1.0), (1, 0)), (1.2, 2), (0, 0)):
        _close(ours.gaussian_filter(x, sigma, order=order, mode=mode),
               ndi.gaussian_filter(x, sigma, order=order, mode=mode))
    for size, origin in ((3, 0), ((4, 5), 0), ((4, 3), (1, -1)), (1, 0)):
        _close(ours.uniform_filter(x, size, mode=mode, origin=origin),
               ndi.uniform_filter(x, size, mode=mode, origin=origin))


def test_gaussian_filter_radius_axes_and_1d(rng):
    x = _image(rng, (12, 15, 6), "float64")
    _close(ours.gaussian_filter(x, 1.3, radius=2, axes=(0, 2)),
           ndi.gaussian_filter(x, 1.3, radius=2, axes=(0, 2)))
    _close(ours.gaussian_filter1d(x, 2.0, axis=1, order=3),
           ndi.gaussian_filter1d(x, 2.0, axis=1, order=3))
    _close(ours.uniform_filter1d(x, 4, axis=0), ndi.uniform_filter1d(x, 4, axis=0))


def _scipy_convolve_over(x, w, axes, mode, origin):
    """scipy's ``convolve(x, w, axes=axes, ...)``; before scipy 1.15 (no ``axes=``), the
    same from full-ndim weights: its dims run over the axes in increasing order, its
    origins over the axes as given."""
    import inspect

    if "axes" in inspect.signature(ndi.convolve).parameters:
        return ndi.convolve(x, w, axes=axes, mode=mode, origin=origin)
    full = w.reshape([w.shape[sorted(axes).index(a)] if a in axes else 1
                      for a in range(x.ndim)])
    origins = [0] * x.ndim
    for a, o in zip(axes, origin):
        origins[a] = o
    return ndi.convolve(x, full, mode=mode, origin=origins)


def test_axes_origins_and_the_separable_filters_modes_per_axis(rng):
    x = _image(rng, (10, 11, 7), "float64")
    w = rng.uniform(-1, 1, (3, 4))
    for axes in ((0, 2), (2, 0), (1, 2)):
        _close(ours.convolve(x, w, axes=axes, mode="wrap", origin=[1, -1]),
               _scipy_convolve_over(x, w, axes, "wrap", [1, -1]))
        _close(ours.uniform_filter(x, (3, 4), axes=axes, mode=["wrap", "nearest"]),
               ndi.uniform_filter(x, (3, 4), axes=axes, mode=["wrap", "nearest"]))
        _close(ours.gaussian_filter(x, (1.0, 2.0), axes=axes, mode=["mirror", "constant"]),
               ndi.gaussian_filter(x, (1.0, 2.0), axes=axes, mode=["mirror", "constant"]))
    with pytest.raises(RuntimeError, match="sequence of modes"):
        ours.convolve(x, w, axes=(0, 1), mode=["wrap", "nearest"])


def test_output_is_filled_and_returned(rng):
    x = _image(rng, (16, 16), "float64")
    w = rng.uniform(size=(3, 3))
    out = np.empty_like(x)
    assert ours.convolve(x, w, output=out) is out
    _close(out, ndi.convolve(x, w))
    assert ours.correlate(x, w, output=np.float32).dtype == np.float32
    into = np.empty(x.shape, np.int32)
    assert ours.gaussian_filter(x, 2, output=into) is into
    _close(into, ndi.gaussian_filter(x, 2, output=np.int32))


def test_integer_results_wrap_and_cut_toward_zero_as_scipys():
    x = np.array([100, 200, 250], np.uint8)
    _close(ours.convolve(x, [1.0, 1.0]), ndi.convolve(x, [1.0, 1.0]))  # 300 wraps to 44
    y = np.array([1, 2, 3], np.int16)
    _close(ours.convolve(y, [-0.5, -0.7]), ndi.convolve(y, [-0.5, -0.7]))


def test_complex_weights_as_scipys(rng):
    x = rng.uniform(size=(9, 8))
    w = rng.uniform(size=(3, 2)) + 1j * rng.uniform(size=(3, 2))
    for name in ("convolve", "correlate"):
        _close(getattr(ours, name)(x, w), getattr(ndi, name)(x, w))


@pytest.mark.parametrize("call, error", [
    (lambda x: ours.convolve(x, np.ones((3, 3)), origin=2), ValueError),
    (lambda x: ours.convolve(x, np.ones((3, 3)), mode="bogus"), RuntimeError),
    (lambda x: ours.convolve(x, np.ones(3)), RuntimeError),
    (lambda x: ours.convolve(x, np.ones((3, 3)), output=np.empty((2, 2))), RuntimeError),
])
def test_errors_are_scipys(call, error):
    x = np.ones((6, 6))
    with pytest.raises(error):
        call(x)


def test_dask_arrays_stay_lazy(rng):
    da = pytest.importorskip("dask.array")
    x = _image(rng, (40, 36), "float32")
    w = rng.uniform(size=(5, 4)).astype(np.float32)
    lazy = ours.convolve(da.from_array(x, chunks=(16, 20)), w, mode="mirror", origin=(1, 0))
    assert isinstance(lazy, da.Array)
    _close(lazy.compute(), ndi.convolve(x, w, mode="mirror", origin=(1, 0)))
    lazy = ours.gaussian_filter(da.from_array(x, chunks=(16, 20)), 1.5)
    _close(lazy.compute(), ndi.gaussian_filter(x, 1.5))


def test_grid_of_modes_has_every_name_scipy_has():
    assert set(MODES) == set(ours.MODES)
    for a, b in itertools.combinations(["reflect", "grid-mirror"], 2):
        assert ours.MODES[a] == ours.MODES[b]


# -- fftconv.signal ------------------------------------------------------------------------------

signal = pytest.importorskip("scipy.signal")
from fftconv import signal as our_signal  # noqa: E402

SHAPES = [((20, 17), (5, 4)), ((6, 5), (9, 8)), ((12, 12), (12, 3)), ((1, 30), (1, 7))]


@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve", "convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("float32", "float32"),
                                    ("uint16", "uint16"), ("complex128", "float64"),
                                    ("int16", "float32")])
def test_signal_functions_are_scipys(rng, name, mode, shapes, dtypes):
    a, b = (_image(rng, s, d) if d[0] != "c" else
            (rng.uniform(size=s) + 1j * rng.uniform(size=s)).astype(d)
            for s, d in zip(shapes, dtypes))
    ours_f, theirs_f = getattr(our_signal, name), getattr(signal, name)
    try:
        want = theirs_f(a, b, mode)
    except ValueError as err:
        with pytest.raises(ValueError, match=str(err)[:20]):
            ours_f(a, b, mode)
        return
    got = ours_f(a, b, mode)
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)
    else:
        scale = np.abs(want).max() or 1.0
        # scipy transforms a float32 input in single precision, whatever the other is.
        single = np.float32 in (a.dtype, b.dtype) or want.dtype == np.complex64
        tol = 1e-4 if single else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_fftconvolve_axes_broadcast_as_scipys(rng, mode):
    a = rng.uniform(size=(4, 30, 20))
    b = rng.uniform(size=(1, 7, 20))
    np.testing.assert_allclose(our_signal.fftconvolve(a, b, mode, axes=1),
                               signal.fftconvolve(a, b, mode, axes=1), atol=1e-10)
    np.testing.assert_allclose(our_signal.oaconvolve(a, b[:, :, :5], mode, axes=(1, 2)),
                               signal.oaconvolve(a, b[:, :, :5], mode, axes=(1, 2)),
                               atol=1e-10)


def test_signal_methods_and_choice():
    a, b = np.arange(40.0).reshape(5, 8), np.ones((3, 3))
    for method in ("direct", "fft", "auto"):
        np.testing.assert_allclose(our_signal.convolve(a, b, "same", method),
                                   signal.convolve(a, b, "same", method), atol=1e-10)
    with pytest.raises(ValueError, match="method flags"):
        our_signal.convolve(a, b, method="bogus")
    assert our_signal.choose_conv_method(np.ones((4096,)), np.ones((3,))) == "direct"
    assert our_signal.choose_conv_method(np.ones((512, 512)), np.ones((64, 64))) == "fft"
    chosen, times = our_signal.choose_conv_method(a, b, measure=True)
    assert chosen in ("direct", "fft") and set(times) == {"direct", "fft"}


def test_signal_errors_are_scipys():
    with pytest.raises(ValueError, match="same dimensionality"):
        our_signal.fftconvolve(np.ones(3), np.ones((2, 2)))
    with pytest.raises(ValueError, match="acceptable mode"):
        our_signal.convolve(np.ones(3), np.ones(2), "bogus")
    assert our_signal.fftconvolve(np.ones(0), np.ones(3)).size == 0
