"""Opt-in measured planning (setting ``autotune``), like cuDNN's benchmark mode.

The first call with a new signature runs every candidate whose estimate is
within 8× of the best, keeps the fastest, and returns that run's result;
later calls with the same signature use the winner without measuring.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from fftconv._infra.forks import module_lock

WITHIN = 8.0
_winners: dict[tuple, str] = {}
_lock = module_lock(globals())


def _signature(request, plan) -> tuple:
    return (request.image.shape, request.kernel.shape, request.image.dtype.str,
            request.kernel.dtype.str, request.axes, request.windows, request.boundary,
            request.cval != 0, plan.backend.name, plan.threads, plan.memory_limit)


def best(request, plan, settings, spectra, run_plan: Callable):
    """The plan to use: measured once per signature, remembered after."""
    key = _signature(request, plan)
    with _lock:
        winner = _winners.get(key)
    if winner is not None:
        return _with_method(plan, winner)
    fastest = min(c.seconds for c in plan.candidates)
    timings = {}
    for candidate in plan.candidates:
        if candidate.seconds > WITHIN * fastest:
            continue
        trial = _with_method(plan, candidate.method)
        start = time.perf_counter()
        run_plan(request, trial, settings, spectra)
        timings[candidate.method] = time.perf_counter() - start
    winner = min(timings, key=timings.get)
    with _lock:
        _winners[key] = winner
    measured = ", ".join(f"{m} {t * 1e3:.1f} ms" for m, t in timings.items())
    return dataclasses.replace(_with_method(plan, winner), reason=f"measured: {measured}")


def _with_method(plan, method: str):
    chosen = next(c for c in plan.candidates if c.method == method)
    return dataclasses.replace(plan, method=method, fft_shape=chosen.fft_shape,
                               block_shape=chosen.block_shape, reason="autotune winner")


def forget() -> None:
    with _lock:
        _winners.clear()
