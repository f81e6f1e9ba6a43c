"""Calibration: measure the cost model's rates on this machine (``fftconv calibrate``).

Each rate is found by timing the real code path, through the public API, on
a small problem and solving the model's (linear) estimate for it, so the rates
absorb the copies and Python overheads the model does not spell out.  The
results are stored by :mod:`fftconv._planning.rates`, where the planner reads them.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fftconv._core import settings as _config
from fftconv._core.request import build_request
from fftconv._methods.direct import opencv_installed
from fftconv._ops.api import convolve
from fftconv._ops.window import window_sum
from fftconv._planning import Rates, make_planner, shape_problem
from fftconv._planning import rates as stored
from fftconv._registry import available_backends

MIN_TILE_SECONDS = 2e-5


def times(fn: Callable[[], object], repeats: int = 3) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    return statistics.median(times(fn, repeats))


def _solve(measured: float, estimate: Callable[[float], float]) -> float:
    """The rate r with estimate(r) == measured, for an estimate linear in r."""
    at0, at1 = estimate(0.0), estimate(1.0)
    slope = at1 - at0
    return max((measured - at0) / slope, 1e-15) if slope > 0 else 1e-15


def _estimate(field: str, method: str, image, kernel, backend: str, threads: int,
              base: Rates, **settings) -> Callable[[float], float]:

    request = build_request(image, kernel, "same", "constant", 0.0, None, method, "propagate",
                            None, flip=False)
    resolved = _config.resolve(backend=backend, workers=threads)
    resolved = dataclasses.replace(resolved, **settings)

    def estimate(rate: float) -> float:
        planner = make_planner(resolved)
        planner.fixed_rates = planner.rates = dataclasses.replace(base, **{field: rate})
        return planner.plan(shape_problem(request), method).seconds

    return estimate


def measure(backend: str, dtype, threads: int, size: int = 1024) -> Rates:
    """Rates for one backend, dtype and thread count (a few seconds)."""
    rng = np.random.default_rng(0)
    image = rng.random((size, size)).astype(dtype)
    rates = Rates()
    opts = dict(backend=backend, workers=threads)

    small = rng.random((33, 33)).astype(dtype)
    t = median_time(lambda: convolve(image, small, method="fft", **opts))
    rates = dataclasses.replace(rates, fft=_solve(t, _estimate(
        "fft", "fft", image, small, backend, threads, rates)))

    limit = 2 * 2**20
    with _config.set(memory_limit=limit):
        t = median_time(lambda: convolve(image, small, method="overlap-add", **opts))
    tile = _solve(t, _estimate("tile", "overlap-add", image, small, backend, threads, rates,
                               memory_limit=limit))
    # Noise can solve the overhead to ~0, which would make thousands of tiny tiles look free.
    rates = dataclasses.replace(rates, tile=max(tile, MIN_TILE_SECONDS))

    general = rng.random((15, 15)).astype(dtype)  # above OpenCV's direct area: NumPy engine
    half = image[: size // 4, : size // 4]
    t = median_time(lambda: convolve(half, general, method="direct", **opts))
    rates = dataclasses.replace(rates, direct_numpy=_solve(t, _estimate(
        "direct_numpy", "direct", half, general, backend, threads, rates)))

    if opencv_installed() and np.dtype(dtype).kind == "f":
        pair = []
        for k in (1, 7):  # 7x7 stays below OpenCV's direct area for float64 too
            taps = rng.random((k, k)).astype(dtype)
            pair.append(median_time(lambda taps=taps: convolve(
                image, taps, method="direct", boundary="reflect", **opts)) / image.size)
        per_tap = max((pair[1] - pair[0]) / 48, 1e-13)
        rates = dataclasses.replace(rates, opencv_tap=per_tap,
                                    opencv_pass=max(pair[0] - per_tap, 1e-12))

    t = median_time(lambda: window_sum(image, 31))
    return dataclasses.replace(rates, box=t / (image.size * 2))


def calibrate(backends: list[str] | None = None, dtypes=("float32", "float64"),
              threads: list[int] | None = None, report: Callable[[str], None] = print) -> Path:
    """Measure every (backend, dtype, threads) and store the rates; returns the file written."""
    backends = backends or available_backends()
    threads = threads or sorted({1, _config.resolve().threads()})
    entries: dict[str, Rates] = dict(stored.stored_rates())
    for backend in backends:
        for dtype in dtypes:
            for n in threads:
                start = time.perf_counter()
                rates = measure(backend, dtype, n)
                entries[stored.entry_key(backend, dtype, n)] = rates
                report(f"{backend:<8} {dtype:<8} threads={n}: fft {rates.fft:.2e} s/nlogn, "
                       f"tile {rates.tile * 1e6:.0f} µs, direct {rates.direct_numpy:.2e} s/tap, "
                       f"opencv {rates.opencv_tap:.2e} s/tap + {rates.opencv_pass:.2e} s, "
                       f"box {rates.box:.2e} s  ({time.perf_counter() - start:.1f} s)")
    return stored.save(entries)
