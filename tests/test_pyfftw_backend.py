"""The pyFFTW backend: plan reuse, thread safety, inputs untouched, wisdom."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv
from fftconv._registry import discovery as _registry
from fftconv._registry.fastlen import next_smooth

pyfftw_ = pytest.importorskip("fftconv.backends.pyfftw_")
pytest.importorskip("pyfftw")


@pytest.fixture
def backend():
    return _registry.load_backend("pyfftw")


def test_hammer_one_shape_from_many_threads(backend, rng):
    """FFTW plans are unsafe to share between threads (pyFFTW #346): ours never are."""
    x = random(rng, (96, 80), "float32")
    k = random(rng, (7, 7), "float32")
    expected = fftconv.convolve(x, k, method="fft", backend="numpy")

    def one(_):
        return fftconv.convolve(x, k, method="fft", backend="pyfftw", workers=1)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(200)))
    for result in results:
        np.testing.assert_array_equal(result, results[0])
    np.testing.assert_allclose(results[0], expected, atol=2e-5)


@pytest.mark.parametrize("effort", ["estimate", "measure"])
def test_input_never_overwritten(backend, rng, effort, tmp_path):
    x = random(rng, (33, 20), "float64")
    spectrum = np.fft.rfftn(x, axes=(0, 1))
    before_x, before_s = x.copy(), spectrum.copy()
    with fftconv.config.set(planner_effort=effort, wisdom_path=str(tmp_path / "w.json")):
        backend.rfftn(x, (33, 20), (0, 1), 2)
        backend.irfftn(spectrum, (33, 20), (0, 1), 2)
    np.testing.assert_array_equal(x, before_x)
    np.testing.assert_array_equal(spectrum, before_s)


def test_plans_are_reused_and_bounded(backend, rng, monkeypatch):
    backend._plans.clear()
    x = random(rng, (20, 20), "float32")
    builds = []
    original = backend._build
    monkeypatch.setattr(backend, "_build", lambda *a: builds.append(a) or original(*a))
    for _ in range(5):
        backend.rfftn(x, (24, 24), (0, 1), 1)
    assert len(builds) == 1
    for n in range(40):
        backend.rfftn(x, (24, 24 + n), (0, 1), 1)
    assert len(backend._plans) <= pyfftw_.PLAN_CACHE_SIZE


@pytest.mark.parametrize("n", [34, 35])
def test_inverses_to_even_and_odd_lengths_have_their_own_plans(backend, rng, n):
    # Transform lengths 48 and 49 share their 25 complex values; one plan for both
    # made the second convolution fail (regression).
    k = random(rng, (3, 15), "float64")
    for m in (n, 69 - n):
        x = random(rng, (3, m), "float64")
        got = fftconv.convolve(x, k, "full", method="fft", backend="pyfftw")
        assert_matches(got, reference(x, k, "full"), "float64")
    s = (8, 48 + (n % 2))
    spectrum = np.fft.rfftn(random(rng, (8, 48), "float64"))
    np.testing.assert_allclose(backend.irfftn(spectrum, s, (0, 1)),
                               np.fft.irfftn(spectrum, s, axes=(0, 1)), atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_native_precision(backend, rng, dtype):
    x = random(rng, (16, 12), dtype)
    k = random(rng, (3, 5), dtype)
    got = fftconv.convolve(x, k, "full", method="fft", backend="pyfftw")
    assert_matches(got, reference(x, k, "full"), np.result_type(dtype, np.float32))


def test_wisdom_saved_atomically_and_reloaded(tmp_path, rng):
    import pyfftw

    path = tmp_path / "wisdom.json"
    with fftconv.config.set(planner_effort="measure", wisdom_path=str(path)):
        fresh = pyfftw_.PyFFTWBackend()
        fresh.rfftn(random(rng, (30, 28), "float64"), (30, 28), (0, 1), 1)
    record = json.loads(path.read_text())
    assert record["pyfftw"] == pyfftw.__version__ and any(record["wisdom"])
    assert not list(tmp_path.glob(".wisdom-*")), "temporary file left behind"
    pyfftw.forget_wisdom()
    assert pyfftw_.load_wisdom(pyfftw, path) is True


def test_stale_and_corrupt_wisdom_are_reported(tmp_path):
    import pyfftw

    path = tmp_path / "wisdom.json"
    path.write_text("{not json")
    with pytest.warns(pyfftw_.WisdomWarning, match="unreadable"):
        assert not pyfftw_.load_wisdom(pyfftw, path)
    path.write_text(json.dumps({"format": 1, "pyfftw": "0.0.1", "machine": "vax",
                                "processor": "", "wisdom": ["", "", ""]}))
    with pytest.warns(pyfftw_.WisdomWarning, match="stale"):
        assert not pyfftw_.load_wisdom(pyfftw, path)
    stamp = pyfftw_._wisdom_stamp(pyfftw)
    path.write_text(json.dumps(dict(stamp, wisdom=["(garbage", "(x", "(y"])))
    with pytest.warns(pyfftw_.WisdomWarning, match="rejected"):
        pyfftw_.load_wisdom(pyfftw, path)


def test_unwritable_wisdom_is_a_warning_not_an_error(tmp_path, rng):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with fftconv.config.set(planner_effort="measure", wisdom_path=str(blocker / "w.json")):
        with pytest.warns(pyfftw_.WisdomWarning) as caught:
            pyfftw_.PyFFTWBackend().rfftn(random(rng, (10,), "float64"), (10,), (0,), 1)
    # One warning, on save: a path that does not exist yet is not "unreadable".
    assert len(caught) == 1 and "could not be saved" in str(caught[0].message)


def test_fast_lengths_are_the_cheapest_not_the_smallest(backend):
    """The smallest 7-smooth length is often a slow one for FFTW: a 2250² convolution
    (2250 = 2·3²·5³) took 1.3× as long as a 2304² one, 1125² 2.2× as long as 1152²,
    4374² (2·3⁷) 1.4× as long as 4480² (benchmarks/fft_lengths.py).  The old rule
    picked 2250, 1125 and 4374."""
    assert [backend.next_fast_len(n, True) for n in (2248, 1121, 4350)] == [2304, 1152, 4480]
    lengths = [backend.next_fast_len(n, True) for n in range(2, 6000)]
    assert all(next_smooth(m, (2, 3, 5, 7)) == m for m in lengths)
    assert not any(m % 2 for m in lengths)  # an odd real transform costs FFTW 2-3×
    plan = fftconv.plan((2248, 2248), (201, 201), mode="valid", backend="pyfftw")
    assert plan.fft_shape == (2304, 2304)


def test_a_convolvers_backend_sees_the_settings_it_was_made_with(tmp_path, rng):
    """The backend reads its settings (effort, wisdom file) from the call: a Convolver's
    from its creation, as it promises.  It once read the live configuration on every
    transform, so this wisdom went to the default file instead (and the reads cost a
    small FFT convolution 0.1 ms a transform)."""
    path = tmp_path / "wisdom.json"
    k = random(rng, (9, 9), "float64")
    with fftconv.config.set(planner_effort="measure", wisdom_path=str(path)):
        blur = fftconv.Convolver(k, method="fft", backend="pyfftw")
    x = random(rng, (37, 41), "float64")
    assert_matches(blur(x), reference(x, k), "float64")
    assert path.exists() and json.loads(path.read_text())["wisdom"]


def test_settings_in_a_call_answer_get_and_yield_to_set():
    from fftconv._core import settings as _config

    outer = _config.resolve(workers=3)
    with _config.in_effect(outer):
        assert fftconv.config.get("workers") == 3
        with fftconv.config.set(workers=5):
            assert fftconv.config.get("workers") == 5
        assert fftconv.config.get("workers") == 3
    assert fftconv.config.get("workers") == -1
