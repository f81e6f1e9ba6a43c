"""Structured kernels priced: the route of a separable, low-rank or box kernel, when cheaper.

:func:`choose` finds a kernel's structure (:mod:`fftconv._core.structure`),
prices its passes with the planner, and returns a :class:`Choice` when they
are estimated faster than the best general method; the passes then run
through :mod:`fftconv._methods.structured`.  Both the structure found and the
choice are kept per kernel content (:class:`~fftconv._infra.cache.Cache`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np

from fftconv._core.structure import GENERAL, Structure, analyze, factor_shape, may_be_low_rank
from fftconv._infra.cache import Cache
from fftconv._methods.spectra import kernel_digest
from fftconv._methods.structured import pass_requests
from fftconv._planning.rates import rates_for
from fftconv._registry import load_backend

# The SVD of a kernel up to this area costs well under a millisecond: no pricing first.
CHEAP_SVD_AREA = 64 * 64

_structures = Cache("kernel structures", entries=64)
# choose()'s answers: pricing a route plans each of its passes, 0.4 ms a call.
_choices = Cache("structured choices", entries=64)
_NOT_STRUCTURED = "not structured"  # a kept answer of None


@dataclasses.dataclass(frozen=True)
class Choice:
    """A structured route estimated faster than the general methods' best."""

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
    found = _structures.get(key)
    quick = _structures.get((*key, "no-svd"))
    if found is not None:
        return found
    if quick is None:
        quick = analyze(kernel, axes, low_rank=False)
        _structures.put((*key, "no-svd"), quick)
    if quick.kind != "general" or not may_be_low_rank(kernel, axes) or not worth_svd():
        return quick
    found = analyze(kernel, axes)
    _structures.put(key, found)
    return found


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
    found = _choices.get(key)
    if found is not None:
        return None if found is _NOT_STRUCTURED else found
    choice = _priced(request, settings, plan_request, digest)
    _choices.put(key, _NOT_STRUCTURED if choice is None else choice)
    return choice


def _choice_key(request, settings, digest: str) -> tuple:
    """Everything :func:`_priced` depends on, but the kernel's values (``digest``)."""
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
