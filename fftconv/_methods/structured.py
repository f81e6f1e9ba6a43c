"""Run a structured kernel (see :mod:`fftconv._structure`) when it is estimated cheaper."""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
from collections.abc import Callable

import numpy as np

from fftconv._shapes import output_window
from fftconv._spectra import kernel_digest
from fftconv._structure import GENERAL, Structure, analyze, pass_cvals

_cache: collections.OrderedDict[tuple, Structure] = collections.OrderedDict()
_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Choice:
    structure: Structure
    seconds: float
    plain_seconds: float


def structure_of(kernel: np.ndarray, axes: tuple[int, ...]) -> Structure:
    """``analyze`` once per kernel content (a digest) and axes."""
    digest = kernel_digest(kernel)
    if digest is None:
        return GENERAL
    key = (digest, kernel.shape, kernel.dtype.str, axes)
    with _lock:
        if key in _cache:
            return _cache[key]
    found = analyze(kernel, axes)
    with _lock:
        _cache[key] = found
        while len(_cache) > 64:
            _cache.popitem(last=False)
    return found


def pass_requests(request, factors: tuple[np.ndarray, ...]):
    """One request per factor, each on the previous pass's output shape."""
    shape = list(request.image.shape)
    for factor, cval in zip(factors, pass_cvals(factors, request.cval)):
        windows = tuple(output_window(shape[ax], factor.shape[ax], request.mode)
                        for ax in request.axes)
        yield shape, factor, cval, windows
        for ax, (a, b) in zip(request.axes, windows):
            shape[ax] = b - a


def _passes_cost(request, factors, plan_request, settings) -> float:
    total = 0.0
    for shape, factor, cval, windows in pass_requests(request, factors):
        stand_in = np.broadcast_to(np.zeros((), request.image.dtype), shape)
        sub = request.replace(image=stand_in, kernel=factor, cval=cval, windows=windows,
                              method="auto")
        total += plan_request(sub, settings).seconds
    return total


def box_rate(request, settings) -> float:
    """Running sums: seconds per output element per axis (calibrated)."""
    from fftconv._calibrate import rates_for
    from fftconv._registry import load_backend

    return rates_for(load_backend(settings.backend).name, request.dtype,
                     settings.threads()).box


def choose(request, settings, plan_request: Callable) -> Choice | None:
    """The structured route if it is estimated faster than the best general method."""
    structure = structure_of(request.kernel, request.axes)
    if structure.kind == "general":
        return None
    plain = plan_request(request, settings).seconds
    if structure.kind == "box":
        outputs = math.prod(b - a for a, b in request.windows) * math.prod(
            n for ax, n in enumerate(request.image.shape) if ax not in request.axes)
        seconds = outputs * len(request.axes) * box_rate(request, settings)
    else:
        # Every term's factors have the same shapes, so one term's passes price them all
        # (a 201² disk has rank ~100: pricing each term cost 30 ms a call).
        seconds = len(structure.terms) * _passes_cost(request, structure.terms[0],
                                                      plan_request, settings)
    return Choice(structure, seconds, plain) if seconds < plain else None


def run(choice: Choice, request, compute_plain: Callable) -> np.ndarray:
    structure = choice.structure
    if structure.kind == "box":
        from fftconv._window import box_sum

        return box_sum(request, structure.value)
    out = None
    for term in structure.terms:
        part = request.image
        for _, factor, cval, windows in pass_requests(request, term):
            part = compute_plain(request.replace(image=part, kernel=factor, cval=cval,
                                                 windows=windows, method="auto"))
        out = part if out is None else np.add(out, part, out=out)
    return out
