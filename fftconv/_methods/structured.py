"""Run a structured kernel (see :mod:`fftconv._core.structure`) when it is estimated cheaper."""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np

from fftconv._core.shapes import output_window
from fftconv._core.structure import (
    GENERAL,
    Structure,
    analyze,
    factor_shape,
    may_be_low_rank,
    pass_cvals,
)
from fftconv._infra.forks import module_lock
from fftconv._methods.spectra import kernel_digest

# The SVD of a kernel up to this area costs well under a millisecond: no pricing first.
CHEAP_SVD_AREA = 64 * 64

_cache: collections.OrderedDict[tuple, Structure] = collections.OrderedDict()
# choose()'s answers: pricing a route plans each of its passes, 0.4 ms a call.
_choices: collections.OrderedDict[tuple, Choice | None] = collections.OrderedDict()
_lock = module_lock(globals())


@dataclasses.dataclass(frozen=True)
class Choice:
    structure: Structure
    seconds: float
    plain_seconds: float


def structure_of(kernel: np.ndarray, axes: tuple[int, ...],
                 worth_svd: Callable[[], bool] = lambda: True,
                 digest: str | None = None) -> Structure:
    """``analyze`` once per kernel content (a digest) and axes.

    The SVD runs only if ``worth_svd()`` says a low-rank route could pay for it;
    until it has run, the cheap tests' answer is kept on its own.  ``digest``
    is the kernel's :func:`~fftconv._methods.spectra.kernel_digest`, when known.
    """
    digest = digest or kernel_digest(kernel)
    if digest is None:
        return GENERAL
    key = (digest, kernel.shape, kernel.dtype.str, axes)
    with _lock:
        found = _cache.get(key)
        quick = _cache.get((*key, "no-svd"))
    if found is not None:
        return found
    if quick is None:
        quick = analyze(kernel, axes, low_rank=False)
        _remember((*key, "no-svd"), quick)
    if quick.kind != "general" or not may_be_low_rank(kernel, axes) or not worth_svd():
        return quick
    found = analyze(kernel, axes)
    _remember(key, found)
    return found


def _remember(key: tuple, value, cache: collections.OrderedDict = _cache) -> None:
    with _lock:
        cache[key] = value
        while len(cache) > 64:
            cache.popitem(last=False)


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


def rates(request, settings, threads: int | None = None):
    """The cost model's rates for this request's dtype and the settings' backend and
    threads (``threads``: ``settings.threads()``, when the caller has it already)."""
    from fftconv._planning.rates import rates_for
    from fftconv._registry.discovery import load_backend

    threads = settings.threads() if threads is None else threads
    return rates_for(load_backend(settings.backend).name, request.dtype, threads)


def box_rate(request, settings) -> float:
    """Running sums: seconds per output element per axis (calibrated)."""
    return rates(request, settings).box


def choose(request, settings, plan_request: Callable) -> Choice | None:
    """The structured route if it is estimated faster than the best general method.

    Kept per kernel content, shapes, options, settings and rates: pricing a
    route plans each of its passes, which cost more than a small image's
    convolution.
    """
    digest = kernel_digest(request.kernel)
    if digest is None:
        return None  # past the hashing limit no structure is looked for (GENERAL)
    key = _choice_key(request, settings, digest)
    with _lock:
        if key in _choices:
            _choices.move_to_end(key)
            return _choices[key]
    choice = _priced(request, settings, plan_request, digest)
    _remember(key, choice, _choices)
    return choice


def _choice_key(request, settings, digest: str) -> tuple:
    """Everything :func:`_priced` depends on, but the kernel's values (``digest``)."""
    from fftconv._registry.discovery import load_backend

    backend, threads = load_backend(settings.backend), settings.threads()
    return (digest, request.kernel.shape, request.kernel.dtype.str, request.axes,
            request.image.shape, request.image.dtype.str, request.windows, request.mode,
            request.boundary, request.cval, request.dtype.str, settings, threads,
            backend.name, id(backend), rates(request, settings, threads))


def _priced(request, settings, plan_request: Callable, digest: str) -> Choice | None:
    @functools.cache
    def plain() -> float:
        return plan_request(request, settings).seconds

    @functools.cache
    def per_term() -> float:
        # Every term's factors have the shapes of the kernel's own axes, so one term's
        # passes price them all (a 201² disk has rank ~100: pricing each cost 30 ms a call).
        return _passes_cost(request, _term_shaped(request), plan_request, settings)

    def worth_svd() -> bool:
        # A data-like kernel (an adjoint's or a fit's block, 256²) paid 13 ms of SVD a
        # call for a route that two terms already make slower than the plain one.
        return request.kernel.size <= CHEAP_SVD_AREA or 2 * per_term() < plain()

    structure = structure_of(request.kernel, request.axes, worth_svd, digest)
    if structure.kind == "general":
        return None
    if structure.kind == "box":
        outputs = math.prod(b - a for a, b in request.windows) * math.prod(
            n for ax, n in enumerate(request.image.shape) if ax not in request.axes)
        seconds = outputs * len(request.axes) * box_rate(request, settings)
    else:
        # One pass per term and axis, where the plain method makes one: on small images
        # the fixed cost of the passes outweighs the taps saved.
        passes = len(structure.terms) * len(request.axes)
        extra = (passes - 1) * rates(request, settings).extra_pass
        seconds = len(structure.terms) * per_term() + extra
    return Choice(structure, seconds, plain()) if seconds < plain() else None


def _term_shaped(request) -> tuple[np.ndarray, ...]:
    """Factors shaped like one rank-1 term of the request's kernel (for pricing)."""
    kernel = request.kernel
    return tuple(np.ones(factor_shape(kernel.ndim, ax, kernel.shape[ax]), dtype=kernel.dtype)
                 for ax in request.axes)


def run(choice: Choice, request, compute_plain: Callable) -> np.ndarray:
    structure = choice.structure
    if structure.kind == "box":
        from fftconv._ops.window import box_sum

        return box_sum(request, structure.value)
    out = None
    for term in structure.terms:
        part = request.image
        for _, factor, cval, windows in pass_requests(request, term):
            part = compute_plain(request.replace(image=part, kernel=factor, cval=cval,
                                                 windows=windows, method="auto"))
        out = part if out is None else np.add(out, part, out=out)
    return out
