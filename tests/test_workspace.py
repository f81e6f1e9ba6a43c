"""Dask tiles convolved in reused per-thread buffers (the backends' optional ``*_into`` methods)."""

from __future__ import annotations

import os
import threading
import time
import warnings

import numpy as np
import pytest
from conftest import child_finishes, random
from reference import assert_matches, reference

import fftconv
from fftconv._infra.cache import Cache
from fftconv._registry.discovery import load_backend
from fftconv._tiling import blocks as _blocks
from fftconv._tiling import workspace as _workspace

da = pytest.importorskip("dask.array")


@pytest.fixture(params=["scipy", "pyfftw"])
def into_backend(request):
    """A backend with ``rfftn_into`` / ``irfftn_into``."""
    if request.param not in fftconv.available_backends():
        pytest.skip(f"{request.param} is not installed")
    backend = load_backend(request.param)
    if not hasattr(backend, "rfftn_into"):
        pytest.skip("this scipy's pocketfft binding has no out=")
    return backend


@pytest.mark.parametrize("shape, axes", [((10,), (0,)), ((9, 12), (0, 1)), ((9, 12), (1,)),
                                         ((5, 7, 6), (0, 2)), ((4, 6, 5), (2, 1, 0))], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_into_methods_match_scipy_fft(rng, into_backend, shape, axes, dtype):
    import scipy.fft

    x = random(rng, shape, dtype)
    spectrum_shape = list(shape)
    spectrum_shape[axes[-1]] = shape[axes[-1]] // 2 + 1
    spectrum = np.full(spectrum_shape, np.nan, np.result_type(dtype, np.complex64))
    kept = x.copy()
    into_backend.rfftn_into(x, spectrum, axes, 1)
    assert np.array_equal(x, kept)
    expected = scipy.fft.rfftn(x, axes=axes)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(spectrum, expected, atol=tol * np.abs(expected).max())
    back = np.full(shape, np.nan, dtype)
    into_backend.irfftn_into(spectrum, back, axes, 1)
    np.testing.assert_allclose(back, x, atol=tol)
    assert back.dtype == np.dtype(dtype)


def _misaligned(shape, dtype) -> np.ndarray:
    """An array whose data sits 16 bytes past a 64-byte boundary (FFTW plans want 32)."""
    dtype = np.dtype(dtype)
    raw = _workspace._empty_aligned((int(np.prod(shape)) * dtype.itemsize + 64,),
                                    np.dtype(np.uint8))
    return raw[16:16 + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)


@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "misaligned"])
def test_pyfftw_runs_its_plans_on_the_callers_arrays(rng, aligned):
    if "pyfftw" not in fftconv.available_backends():
        pytest.skip("pyfftw is not installed")
    backend = load_backend("pyfftw")
    make = _workspace._empty_aligned if aligned else _misaligned
    x = make((24, 30), np.dtype("float32"))
    x[...] = random(rng, (24, 30), "float32")
    kept = x.copy()
    spectrum = make((24, 16), np.dtype("complex64"))
    assert backend.rfftn_into(x, spectrum, (0, 1)) is spectrum
    assert np.array_equal(x, kept)
    np.testing.assert_allclose(spectrum, np.fft.rfftn(kept), atol=1e-4)
    back = make((24, 30), np.dtype("float32"))
    assert backend.irfftn_into(spectrum, back, (0, 1)) is back
    np.testing.assert_allclose(back, kept, atol=1e-5)
    for plan in backend._plans.values():  # parked on their own buffers: nothing of ours held
        assert plan.fftw.input_array is plan.buffer and plan.fftw.output_array is plan.spare


@pytest.mark.parametrize("shape, axes", [((9, 12), (0, 1)), ((5, 7, 6), (0, 2)),
                                         ((4, 6, 5), (2, 1, 0)), ((6, 8), (1,))], ids=str)
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "into-other"])
def test_complex_into_methods_match_scipy_fft(rng, shape, axes, dtype, in_place):
    import scipy.fft

    backend = load_backend("scipy")
    if not hasattr(backend, "fftn_into"):
        pytest.skip("this scipy's pocketfft binding has no out=")
    x = random(rng, shape, dtype)
    kept = x.copy()
    out = x if in_place else np.full(shape, np.nan, dtype)
    assert backend.fftn_into(x, out, axes, 1) is out
    tol = 1e-5 if dtype == "complex64" else 1e-12
    expected = scipy.fft.fftn(kept, axes=axes)
    np.testing.assert_allclose(out, expected, atol=tol * np.abs(expected).max())
    if not in_place:
        assert np.array_equal(x, kept)
    back = out if in_place else np.full(shape, np.nan, dtype)
    assert backend.ifftn_into(out, back, axes, 1) is back
    np.testing.assert_allclose(back, kept, atol=tol)
    assert back.dtype == np.dtype(dtype)


def _spy(monkeypatch, names=("convolve_in_place", "convolve_by_rows")) -> list:
    """The tiles convolved in this thread's reused buffers (whole, or a strip at a time)."""
    calls = []
    for name in names:
        original = getattr(_blocks, name)

        def counted(*args, _original=original, **kwargs):
            calls.append(threading.get_ident())
            return _original(*args, **kwargs)

        monkeypatch.setattr(_blocks, name, counted)
    return calls


@pytest.fixture(params=["whole", "strips"])
def strips(request, monkeypatch):
    """Tiles transformed in one strip of rows, or in strips of a few rows each."""
    if request.param == "strips":
        monkeypatch.setattr(_blocks, "ROW_BYTES", 200)
    return request.param


@pytest.mark.parametrize("boundary", ["constant", "reflect", "wrap"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("kshape", [(9, 7), (8, 6)], ids=["odd", "even"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tiles_in_reused_buffers_match_reference(rng, monkeypatch, into_backend, strips, dtype,
                                                 kshape, mode, boundary):
    calls = _spy(monkeypatch)
    x = random(rng, (61, 47), dtype)
    k = random(rng, kshape, dtype)
    lazy = fftconv.convolve(da.from_array(x, chunks=(20, 16)), k, mode, boundary=boundary,
                            method="fft", backend=into_backend.name)
    got = lazy.compute(scheduler="threads")
    assert got.dtype == np.dtype(dtype)
    assert_matches(got, reference(x, k, mode, boundary), dtype)
    assert len(calls) == lazy.npartitions  # every tile went through the reused buffers


@pytest.mark.parametrize("layout", ["channels-last", "channels-first"])
def test_channel_axis_and_broadcast_kernel(rng, monkeypatch, into_backend, strips, layout):
    calls = _spy(monkeypatch)
    x = random(rng, (30, 26, 3), "float32")
    k = random(rng, (7, 5, 1), "float32")
    chunks, axes = (11, 9, 3), (0, 1)
    if layout == "channels-first":  # the strips' rows are then not the array's first axis
        x, k, chunks, axes = np.moveaxis(x, 2, 0), np.moveaxis(k, 2, 0), (3, 11, 9), (1, 2)
    got = fftconv.correlate(da.from_array(x, chunks=chunks), k, boundary="mirror",
                            method="fft", backend=into_backend.name, axes=axes)
    assert_matches(got.compute(), reference(x, k, "same", "mirror", correlate=True,
                                            axes=axes), "float32")
    assert calls


@pytest.mark.parametrize("axes", [(0, 1, 2), (2, 0, 1)], ids=str)
def test_three_transformed_axes(rng, monkeypatch, into_backend, strips, axes):
    calls = _spy(monkeypatch)
    x = random(rng, (14, 17, 12), "float64")
    k = random(rng, (5, 4, 3), "float64")
    image = da.from_array(x, chunks=(6, 9, 7))
    got = fftconv.convolve(image, k, "full", boundary="wrap", method="fft",
                           backend=into_backend.name, axes=axes)
    assert_matches(got.compute(), reference(x, k, "full", "wrap", axes=axes), "float64")
    assert len(calls) == got.npartitions


def test_a_2d_tile_keeps_no_buffer_of_the_whole_tile(rng, monkeypatch):
    """With in-place complex passes, a thread keeps the spectrum and one strip of rows."""
    backend = load_backend("scipy")
    if not hasattr(backend, "fftn_into"):
        pytest.skip("this scipy's pocketfft binding has no out=")
    monkeypatch.setattr(_blocks, "ROW_BYTES", 1 << 18)  # strips of ~100 rows of these tiles
    x = random(rng, (1200, 1000), "float32")
    k = random(rng, (31, 31), "float32")
    _workspace._buffers.clear()
    got = fftconv.convolve(da.from_array(x, chunks=600), k, boundary="reflect",
                           method="fft", backend="scipy").compute(scheduler="sync")
    assert_matches(got, reference(x, k, "same", "reflect"), "float32")
    (real, spectrum), = _workspace._buffers.values()
    assert real.shape[1] >= 600 + 30 and spectrum.shape[0] >= 600 + 30  # a padded tile's
    assert real.shape[0] < spectrum.shape[0] / 2  # rows: a strip, not the whole tile
    _workspace._buffers.clear()


def test_several_fft_threads_per_task_transform_whole_tiles(rng, monkeypatch):
    """Strips are one call each: with threads per call they cost more than they save."""
    if not hasattr(load_backend("scipy"), "fftn_into"):
        pytest.skip("this scipy's pocketfft binding has no out=")
    whole = _spy(monkeypatch, ["convolve_in_place"])
    strips = _spy(monkeypatch, ["convolve_by_rows"])
    x = random(rng, (60, 50), "float32")
    k = random(rng, (7, 7), "float32")
    for workers in (1, 2):
        got = fftconv.convolve(da.from_array(x, chunks=30), k, boundary="reflect",
                               method="fft", backend="scipy", workers=workers)
        assert_matches(got.compute(scheduler="sync"), reference(x, k, "same", "reflect"),
                       "float32")
    assert len(strips) == 4 and len(whole) == 4  # workers=1 by strips, workers=2 whole


@pytest.mark.parametrize("nan_policy", ["propagate", "interpolate"])
def test_non_finite_tiles_take_the_general_path(rng, monkeypatch, into_backend, nan_policy):
    calls = _spy(monkeypatch)
    x = random(rng, (48, 48), "float64")
    x[5, 7] = np.nan
    x[40, 30] = np.inf
    k = random(rng, (7, 7), "float64") + 2.0
    image = da.from_array(x, chunks=16)
    got = fftconv.convolve(image, k, boundary="reflect", method="fft", backend=into_backend.name,
                           nan_policy=nan_policy).compute(scheduler="sync")
    expected = fftconv.convolve(x, k, boundary="reflect", method="fft", backend=into_backend.name,
                                nan_policy=nan_policy)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.isnan(got).any() == (nan_policy == "propagate")
    finite = ~np.isnan(expected)
    assert_matches(got[finite], expected[finite], "float64")
    assert 0 < len(calls) < image.npartitions  # only the finite tiles used the buffers


@pytest.mark.parametrize("kernel", ["disk", "separable"])
def test_method_auto_tiles_run_what_the_in_memory_engine_runs(rng, monkeypatch, into_backend,
                                                              kernel):
    """Under method="auto" a tile uses the reused buffers exactly when compute runs one FFT.

    A disk is planned as a plain FFT; a separable kernel takes the structured
    path (two 1-D passes), which never pads the tile to an FFT shape.
    """
    from fftconv._io.kernel_spec import load_kernel

    calls = _spy(monkeypatch)
    x = random(rng, (128, 192), "float32")  # six tiles of one shape, planned alike
    g = np.exp(-np.linspace(-3, 3, 41) ** 2)
    k = (load_kernel("disk:radius=20") if kernel == "disk" else np.outer(g, g)).astype(np.float32)
    image = da.from_array(x, chunks=64)
    got = fftconv.convolve(image, k, boundary="reflect", backend=into_backend.name)
    assert_matches(got.compute(scheduler="sync"), reference(x, k, "same", "reflect"), "float32")
    assert len(calls) == (image.npartitions if kernel == "disk" else 0)


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


@pytest.fixture
def quick_idle(monkeypatch):
    """Idle time cut to 50 ms, so the sweep can be watched."""
    from fftconv._tiling import blocks as _blocks

    for cache in (_workspace._buffers, _blocks._caches):
        monkeypatch.setattr(cache, "idle_seconds", 0.05)
    yield
    _workspace._buffers.clear()


def _gone(store, seconds=5.0) -> bool:
    deadline = time.monotonic() + seconds
    while len(store) and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(store) == 0


def test_idle_buffers_and_kernel_caches_are_dropped_after_a_computation(
        rng, into_backend, quick_idle):
    from fftconv._tiling import blocks as _blocks

    x = random(rng, (64, 60), "float32")
    k = random(rng, (7, 7), "float32")
    lazy = fftconv.convolve(da.from_array(x, chunks=32), k, boundary="reflect", method="fft",
                            backend=into_backend.name)
    got = lazy.compute(scheduler="threads")
    assert_matches(got, reference(x, k, "same", "reflect"), "float32")
    assert _gone(_workspace._buffers) and _gone(_blocks._caches)


def test_a_value_in_use_is_kept_and_the_oldest_goes_over_the_limit(monkeypatch):
    store = Cache("test store", entries=2, idle_seconds=0.3)
    a = store.get_or_make("a", object)
    for _ in range(8):  # used every 0.1 s: never idle for 0.3 s
        time.sleep(0.1)
        assert store.get_or_make("a", object) is a
    store.get_or_make("b", object)
    store.get_or_make("a", object)
    store.get_or_make("c", object)  # "b" is the least recently used
    assert set(store._items) == {"a", "c"}
    assert _gone(store)


def test_a_misfit_is_replaced(quick_idle):
    store = Cache("test store", idle_seconds=0.05)
    assert store.get_or_make("k", lambda: [1]) == [1]
    assert store.get_or_make("k", lambda: [2], fits=lambda value: value == [2]) == [2]
    assert store.get_or_make("k", lambda: [3], fits=lambda value: value == [2]) == [2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_sweeps_on_its_own(quick_idle):
    store = Cache("test store", idle_seconds=0.05)
    store.get_or_make("k", object)
    assert store._running.claim("r") is None  # a parent's thread is making "r"
    with store._lock, warnings.catch_warnings():  # held at fork time: not in the child
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork + threads
        pid = os.fork()
        if pid == 0:  # the child: no timer thread came along, the lock is fresh
            try:
                store.get_or_make("j", object)
                store.get_or_make("r", object)  # made here: the thread making it did not come along
                os._exit(0 if _gone(store) else 1)
            finally:
                os._exit(2)
    assert os.waitpid(pid, 0)[1] == 0
    store._running.finish("r").set_result(None)
    assert _gone(store)


def _idle(make):
    return Cache("test store", idle_seconds=0.05).get_or_make, "key", make


def _spectra(make):
    from fftconv._methods.spectra import SpectrumCache

    return SpectrumCache(entries=2).get_or_make, ("key",), lambda: np.full(4, make())


def _together(get, key, threads=8):
    """``get(key)`` on ``threads`` threads let go at once: each one's value, or its error."""
    start = threading.Barrier(threads)
    results: list = [None] * threads

    def ask(i):
        start.wait()
        try:
            results[i] = get(key)
        except ValueError as err:
            results[i] = err

    workers = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=10)
    assert not any(w.is_alive() for w in workers), "a thread still waits for the value"
    return results


@pytest.mark.parametrize("cache", [_idle, _spectra])
def test_threads_asking_together_make_the_value_once(quick_idle, cache):
    """A Dask worker's first tasks all ask for the kernel spectrum at once: one transform."""
    made = []

    def make():
        made.append(None)
        time.sleep(0.2)  # long enough for every thread to ask while it runs
        return len(made)

    get, key, build = cache(make)
    results = _together(lambda k: get(k, build), key)
    assert len(made) == 1
    assert all(r is results[0] for r in results)


@pytest.mark.parametrize("cache", [_idle, _spectra])
def test_a_failed_make_is_retried_by_a_waiting_thread(quick_idle, cache):
    made = []

    def make():
        made.append(None)
        time.sleep(0.2)
        if len(made) == 1:
            raise ValueError("the first try fails")
        return len(made)

    get, key, build = cache(make)
    results = _together(lambda k: get(k, build), key)
    errors = [r for r in results if isinstance(r, ValueError)]
    assert len(errors) == 1 and len(made) == 2  # the maker has its error; one waiter remade it
    values = [r for r in results if not isinstance(r, ValueError)]
    assert len({id(v) for v in values}) == 1


def test_a_failure_while_keeping_the_value_releases_the_waiting_threads(quick_idle,
                                                                         monkeypatch):
    """The value made, keeping it fails (no timer thread could start, say): the key is
    finished anyway, and the waiting threads get a value instead of waiting for ever."""
    store = Cache("test store", idle_seconds=0.05)
    schedule, failures = store._schedule, []

    def fail_once(delay=None):
        if not failures:
            failures.append(None)
            raise RuntimeError("can't start new thread")
        schedule(delay)

    monkeypatch.setattr(store, "_schedule", fail_once)
    made = []

    def make():
        made.append(None)
        time.sleep(0.2)
        return len(made)

    def get(key):
        try:
            return store.get_or_make(key, make)
        except RuntimeError as err:
            return err

    results = _together(get, "key", threads=4)
    errors = [r for r in results if isinstance(r, RuntimeError)]
    assert len(errors) == 1 and all(isinstance(r, int) for r in results if r not in errors)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_uses_a_spectrum_cache_held_at_fork_time():
    """Forked while a thread held a Convolver's cache lock, or was computing a spectrum in
    it, the child computed nothing: it waited for ever on the parent's lock or thread."""
    from fftconv._methods.spectra import SpectrumCache

    cache = SpectrumCache(entries=2)
    cache.get_or_make(("kept",), lambda: np.ones(3))
    assert cache._running.claim(("making",)) is None  # a parent's thread is computing it
    with cache._lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork + threads
        pid = os.fork()
        if pid == 0:
            try:
                ok = cache.get_or_make(("making",), lambda: np.zeros(2)).shape == (2,) and \
                    cache.get_or_make(("kept",), lambda: np.zeros(9)).shape == (3,)
                os._exit(0 if ok else 1)
            finally:
                os._exit(2)
    cache._running.finish(("making",)).set_result(None)
    child_finishes(pid, 10)
