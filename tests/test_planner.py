"""The planner: shape-only model checks, memory limits, calibration, autotune."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv
from fftconv._ops import calibrate as _calibrate
from fftconv._planning import autotune as _autotune
from fftconv._planning import rates as _rates
from fftconv._planning.planner import Rates, lambertw_m1, optimal_block


def test_lambert_w_branch():
    for z in (-0.3678, -0.2, -1e-3, -1e-9):
        w = lambertw_m1(z)
        assert w <= -1 and math.isclose(w * math.exp(w), z, rel_tol=1e-10)


@pytest.mark.parametrize("k", [2, 17, 255, 1025])
def test_blocks_are_fast_lengths(k):
    from fftconv._registry.fastlen import next_smooth

    block, length = optimal_block(k, 10**6, next_smooth)
    assert next_smooth(length) == length and block == length - k + 1 and block > 0


@pytest.mark.parametrize("shape, kshape", [((4096, 4096), (255, 255)), ((8192,), (1001,)),
                                           ((300, 300, 300), (31, 31, 31))])
def test_plan_is_shape_only_and_explains(shape, kshape):
    plan = fftconv.plan(shape, kshape)
    assert {c.method for c in plan.candidates} == {"direct", "fft", "overlap-add"}
    text = plan.explain()
    assert plan.method in text.splitlines()[0] and len(text.splitlines()) == 4
    for c in plan.candidates:
        if c.fft_shape:
            assert all(fftconv._registry.discovery.load_backend("scipy").next_fast_len(n, True) == n
                       for n in c.fft_shape)


def test_plan_takes_the_arrays_themselves(rng):
    """``fftconv.plan(image, psf)`` reads their shapes and dtypes, and the kernel's zero
    taps as convolve's planner does (before: "The truth value of an array with more than
    one element is ambiguous")."""
    import dask.array as da

    def estimates(plan):
        return [(c.method, c.seconds, c.bytes) for c in plan.candidates]

    image, k = np.zeros((2048, 2048)), random(rng, (65, 65), "float64")
    by_shape = estimates(fftconv.plan(image.shape, k.shape, dtype="float64"))
    single = estimates(fftconv.plan(image.shape, k.shape))
    assert single != by_shape  # float32's working memory is half
    assert estimates(fftconv.plan(image, k)) == by_shape
    assert estimates(fftconv.plan(da.zeros(image.shape, chunks=512), k)) == by_shape
    assert estimates(fftconv.plan(image, k, dtype="float32")) == single
    assert estimates(fftconv.Convolver(k).plan(image)) == by_shape
    by_shape = fftconv.plan(image.shape, k.shape)
    corners = np.zeros((65, 65))
    corners[::64, ::64] = 1.0  # 4 taps of 4225: the direct method's cost is theirs
    assert fftconv.plan(image, corners).method == "direct" != by_shape.method
    assert fftconv.plan(4096, 31).method == fftconv.plan((4096,), (31,)).method


@pytest.mark.parametrize("image_shape, error, message", [
    ("4096x4096", TypeError, "image_shape must be a shape"),
    ((4096, 40.5), TypeError, "image_shape must be a shape"),
    ((4096, -1), ValueError, "image_shape=(4096, -1) has a negative length"),
])
def test_plan_names_a_bad_shape(image_shape, error, message):
    with pytest.raises(error, match=re.escape(message)):
        fftconv.plan(image_shape, (3, 3))


def test_small_kernels_go_direct_large_ones_fft():
    assert fftconv.plan((4096, 4096), (3, 3)).method == "direct"
    assert fftconv.plan((4096, 4096), (127, 127)).method in ("fft", "overlap-add")
    assert fftconv.plan((10**6,), (10**5,)).method in ("fft", "overlap-add")


@pytest.mark.parametrize("limit", ["4MiB", "64MiB"])
def test_memory_limit_is_respected_and_result_unchanged(rng, limit):
    x = random(rng, (600, 500), "float32")
    k = random(rng, (65, 65), "float32")
    with fftconv.config.set(memory_limit=limit):
        plan = fftconv.plan(x.shape, k.shape)
        chosen = next(c for c in plan.candidates if c.method == plan.method)
        assert chosen.bytes <= fftconv.config.get("memory_limit")
        got = fftconv.convolve(x, k)
    assert_matches(got, reference(x, k), "float32")


def test_memory_estimate_bounds_the_measured_peak(rng):
    """tracemalloc sees numpy's allocations; the estimate plus the output must cover them."""
    import tracemalloc

    x = random(rng, (700, 650), "float32")
    k = random(rng, (41, 41), "float32")
    for method in ("fft", "overlap-add"):
        plan = fftconv.plan(x.shape, k.shape, method=method, backend="numpy")
        estimate = next(c for c in plan.candidates if c.method == method).bytes
        fftconv.convolve(x, k, method=method, backend="numpy")
        tracemalloc.start()
        fftconv.convolve(x, k, method=method, backend="numpy")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= 1.5 * (estimate + x.nbytes), (method, peak, estimate)


def test_calibration_round_trip_and_use(tmp_path, monkeypatch):
    monkeypatch.setattr(_rates, "calibration_path", lambda: tmp_path / "cal.json")
    _rates._loaded.clear()
    custom = Rates(fft=1e-6)
    _rates.save({_rates.entry_key("scipy", "float32", 2): custom})
    assert _rates.rates_for("scipy", np.float32, 2) == custom
    assert _rates.rates_for("scipy", np.float32, 7) == custom  # nearest thread count
    assert _rates.rates_for("numpy", np.float32, 2) == Rates()
    with fftconv.config.set(workers=2):  # a slow FFT makes the planner avoid it
        assert fftconv.plan((2048, 2048), (31, 31), backend="scipy").method == "direct"


def test_corrupt_calibration_is_reported_and_ignored(tmp_path, monkeypatch):
    path = tmp_path / "cal.json"
    monkeypatch.setattr(_rates, "calibration_path", lambda: path)
    _rates._loaded.clear()
    path.write_text(json.dumps({"format": 1, "entries": {"scipy|<f4|2": {"fft": "fast"}}}))
    with pytest.warns(_rates.CalibrationWarning, match="unusable"):
        assert _rates.rates_for("scipy", np.float32, 2) == Rates()
    path.write_text("{")
    with pytest.warns(_rates.CalibrationWarning):
        fftconv.plan((64, 64), (3, 3))


def test_calibrate_measures_quickly(tmp_path, monkeypatch):
    monkeypatch.setattr(_rates, "calibration_path", lambda: tmp_path / "cal.json")
    monkeypatch.setattr(_calibrate, "measure", lambda b, d, n: Rates(fft=2e-9))
    path = _calibrate.calibrate(backends=["numpy"], dtypes=("float32",), threads=[1],
                                report=lambda line: None)
    assert json.loads(path.read_text())["entries"]["numpy|<f4|1"]["fft"] == 2e-9


def test_measure_gives_positive_rates():
    rates = _calibrate.measure("numpy", "float32", 1, size=128)
    assert all(v > 0 for v in (rates.fft, rates.tile, rates.direct_numpy, rates.box))


def test_autotune_measures_once_per_signature(rng, monkeypatch):
    _autotune.forget()
    x = random(rng, (120, 110), "float32")
    k = random(rng, (15, 15), "float32")
    runs = []
    from fftconv._planning import engine as _engine

    original = _engine.run_plan

    def counted(request, plan, settings, spectra):
        runs.append(plan.method)
        return original(request, plan, settings, spectra)

    monkeypatch.setattr(_engine, "run_plan", counted)
    with fftconv.config.set(autotune=True):
        first = fftconv.convolve(x, k)
        measured = len(runs)
        second = fftconv.convolve(x, k)
    assert measured >= 3 and len(runs) == measured + 1  # trials, then the winner only
    assert_matches(first, reference(x, k), "float32")
    np.testing.assert_array_equal(first, second)


def test_small_transforms_run_on_one_thread(rng, monkeypatch):
    """Threads cost a small transform more than they save (scipy.fft, 2 threads: 45 µs on
    48² against 15 µs on one); a batch of small ones, or a large one, still shares them."""
    backend = fftconv._registry.discovery.load_backend("scipy")
    asked = []
    original = backend.rfftn

    def spy(x, s, axes, workers=1):
        asked.append((x.shape, workers))
        return original(x, s, axes, workers)

    monkeypatch.setattr(backend, "rfftn", spy)
    k = rng.random((15, 15))
    for shape in [(40, 40), (64, 40, 40), (600, 600)]:
        asked.clear()
        x = rng.random(shape)
        got = fftconv.convolve(x, k if len(shape) == 2 else k[None], method="fft",
                               backend="scipy", workers=2, axes=(-2, -1))
        assert_matches(got, reference(x, k if len(shape) == 2 else k[None], axes=(-2, -1)),
                       "float64")
        image_calls = [w for s, w in asked if s == shape]
        assert image_calls == [1 if shape == (40, 40) else 2]


@pytest.mark.parametrize("backend", ["numpy", "scipy"])
def test_a_plan_pickles_with_its_backend_by_name(backend):
    """A plan travels to a worker process as its backend's name (before: "cannot pickle
    'module' object", for the backend object it holds)."""
    import pickle

    plan = fftconv.plan((512, 512), (31, 31), backend=backend)
    back = pickle.loads(pickle.dumps(plan))
    assert back.backend is fftconv._registry.discovery.load_backend(backend)
    assert back.explain() == plan.explain() and back.candidates == plan.candidates
