"""Opt-in measured planning (setting ``autotune``), like cuDNN's benchmark mode.

The first call with a new signature times every candidate whose estimate is
within 8× of the best and keeps the fastest; that call then runs the winner
(the trials' results are discarded).  Later calls with the same signature use
the winner without measuring.  Winners are kept in a bounded
:class:`~fftconv._infra.cache.Cache` (``fftconv.clear_caches()`` forgets them).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from fftconv._infra.cache import Cache

WITHIN = 8.0
_winners = Cache("autotune winners", entries=1024)


def _signature(request, plan) -> tuple:
    return (request.image.shape, request.kernel.shape, request.image.dtype.str,
            request.kernel.dtype.str, request.axes, request.windows, request.boundary,
            request.cval != 0, plan.backend.name, plan.threads, plan.memory_limit)


def best(request, plan, settings, spectra, run_plan: Callable):
    """The plan to use: measured once per signature, remembered after."""
    key = _signature(request, plan)
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
    _winners.put(key, winner)
    measured = ", ".join(f"{m} {t * 1e3:.1f} ms" for m, t in timings.items())
    return dataclasses.replace(_with_method(plan, winner), reason=f"measured: {measured}")


def _with_method(plan, method: str):
    chosen = next(c for c in plan.candidates if c.method == method)
    return dataclasses.replace(plan, method=method, fft_shape=chosen.fft_shape,
                               block_shape=chosen.block_shape, reason="autotune winner")


def forget() -> None:
    _winners.clear()
