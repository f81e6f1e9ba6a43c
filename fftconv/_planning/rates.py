"""Calibration: measure the cost model's rates on this machine (``fftconv calibrate``).

Each rate is found by timing the real code path on a small problem and
solving the model's (linear) estimate for it, so the rates absorb the
copies and Python overheads the model does not spell out.  Results are
stored per (backend, dtype, threads) in ``calibration.json`` in the user
cache dir; the planner reads them from then on (built-in defaults before,
and whenever the file is unreadable — which is reported once).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fftconv._planning.planner import Rates

FORMAT = 1
MIN_TILE_SECONDS = 2e-5
_loaded: dict[str, tuple[tuple[int, int], dict]] = {}


class CalibrationWarning(RuntimeWarning):
    """The calibration file could not be used; built-in rates apply."""


def calibration_path() -> Path:
    from fftconv._core.settings import user_cache_file

    return user_cache_file("calibration.json")


def _key(backend: str, dtype, threads: int) -> str:
    return f"{backend}|{np.dtype(dtype).str}|{threads}"


def _entries() -> dict:
    path = calibration_path()
    try:
        stat = path.stat()
    except OSError:
        return {}
    def parse() -> dict:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("format") != FORMAT or not isinstance(record.get("entries"), dict):
                raise ValueError("unknown format")
            return {key: _rates(values) for key, values in record["entries"].items()}
        except (OSError, ValueError, TypeError) as err:
            warnings.warn(f"calibration file {path} is unusable and was ignored ({err}); "
                          "run `fftconv calibrate` to rewrite it", CalibrationWarning,
                          stacklevel=6)
            return {}

    from fftconv._core.settings import read_if_changed

    return read_if_changed(_loaded, path, stat, parse)


def _rates(values: dict) -> Rates:
    """Rates from a file entry: known names, positive finite numbers, or ValueError."""
    known = {f.name for f in dataclasses.fields(Rates)}
    if not isinstance(values, dict) or set(values) - known:
        raise ValueError(f"unknown rates {sorted(set(values) - known)}")
    parsed = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 < value < float("inf")):
            raise ValueError(f"rate {name}={value!r} is not a positive number")
        parsed[name] = float(value)
    return Rates(**parsed)


def rates_for(backend: str, dtype, threads: int) -> Rates:
    """Calibrated rates for this backend/dtype/threads (nearest thread count), else defaults."""
    entries = _entries()
    if not entries:
        return Rates()
    exact = entries.get(_key(backend, dtype, threads))
    if exact is not None:
        return exact
    same = [(abs(int(k.split("|")[2]) - threads), k) for k in entries
            if k.startswith(f"{backend}|{np.dtype(dtype).str}|")]
    return entries[min(same)[1]] if same else Rates()


def save(entries: dict[str, Rates], path: Path | None = None) -> Path:
    """Write atomically (temporary file + rename)."""
    path = path or calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "machine": platform.node(), "processor": platform.processor(),
              "entries": {k: dataclasses.asdict(v) for k, v in entries.items()}}
    fd, tmp = tempfile.mkstemp(prefix=".calibration-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    os.replace(tmp, path)
    return path


def _times(fn: Callable[[], object], repeats: int = 3) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    return statistics.median(_times(fn, repeats))


def _solve(measured: float, estimate: Callable[[float], float]) -> float:
    """The rate r with estimate(r) == measured, for an estimate linear in r."""
    at0, at1 = estimate(0.0), estimate(1.0)
    slope = at1 - at0
    return max((measured - at0) / slope, 1e-15) if slope > 0 else 1e-15


def _estimate(field: str, method: str, image, kernel, backend: str, threads: int,
              base: Rates, **settings) -> Callable[[float], float]:
    from fftconv._core import settings as _config
    from fftconv._core.request import build_request
    from fftconv._ops.api import make_planner, shape_problem

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
    import fftconv

    rng = np.random.default_rng(0)
    image = rng.random((size, size)).astype(dtype)
    rates = Rates()
    opts = dict(backend=backend, workers=threads)

    small = rng.random((33, 33)).astype(dtype)
    t = _median_time(lambda: fftconv.convolve(image, small, method="fft", **opts))
    rates = dataclasses.replace(rates, fft=_solve(t, _estimate(
        "fft", "fft", image, small, backend, threads, rates)))

    limit = 2 * 2**20
    with fftconv.config.set(memory_limit=limit):
        t = _median_time(lambda: fftconv.convolve(image, small, method="overlap-add", **opts))
    tile = _solve(t, _estimate("tile", "overlap-add", image, small, backend, threads, rates,
                               memory_limit=limit))
    # Noise can solve the overhead to ~0, which would make thousands of tiny tiles look free.
    rates = dataclasses.replace(rates, tile=max(tile, MIN_TILE_SECONDS))

    general = rng.random((15, 15)).astype(dtype)  # above OpenCV's direct area: NumPy engine
    half = image[: size // 4, : size // 4]
    t = _median_time(lambda: fftconv.convolve(half, general, method="direct", **opts))
    rates = dataclasses.replace(rates, direct_numpy=_solve(t, _estimate(
        "direct_numpy", "direct", half, general, backend, threads, rates)))

    from fftconv._methods.direct import opencv_installed

    if opencv_installed() and np.dtype(dtype).kind == "f":
        pair = []
        for k in (1, 7):  # 7x7 stays below OpenCV's direct area for float64 too
            taps = rng.random((k, k)).astype(dtype)
            pair.append(_median_time(lambda taps=taps: fftconv.convolve(
                image, taps, method="direct", boundary="reflect", **opts)) / image.size)
        per_tap = max((pair[1] - pair[0]) / 48, 1e-13)
        rates = dataclasses.replace(rates, opencv_tap=per_tap,
                                    opencv_pass=max(pair[0] - per_tap, 1e-12))

    t = _median_time(lambda: fftconv.window_sum(image, 31))
    return dataclasses.replace(rates, box=t / (image.size * 2))


def calibrate(backends: list[str] | None = None, dtypes=("float32", "float64"),
              threads: list[int] | None = None, report: Callable[[str], None] = print) -> Path:
    """Measure every (backend, dtype, threads) and store the rates; returns the file written."""
    import fftconv

    backends = backends or fftconv.available_backends()
    from fftconv._core.settings import resolve

    threads = threads or sorted({1, resolve().threads()})
    entries: dict[str, Rates] = dict(_entries())
    for backend in backends:
        for dtype in dtypes:
            for n in threads:
                start = time.perf_counter()
                rates = measure(backend, dtype, n)
                entries[_key(backend, dtype, n)] = rates
                report(f"{backend:<8} {dtype:<8} threads={n}: fft {rates.fft:.2e} s/nlogn, "
                       f"tile {rates.tile * 1e6:.0f} µs, direct {rates.direct_numpy:.2e} s/tap, "
                       f"opencv {rates.opencv_tap:.2e} s/tap + {rates.opencv_pass:.2e} s, "
                       f"box {rates.box:.2e} s  ({time.perf_counter() - start:.1f} s)")
    path = save(entries)
    _loaded.clear()
    return path
