"""The in-memory engine: a request's route decided, then run.

:func:`route` decides how a request runs (a structured kernel's passes, or
one of the general methods as the planner prices them); :func:`run_request`
applies ``nan_policy`` around it.  Everything here works on a
:class:`~fftconv._core.request.Request` of in-memory arrays: validation and
settings come from the operations above, tiling calls it per block.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from fftconv._core import nonfinite
from fftconv._core import settings as _config
from fftconv._core.problem import LinearProblem, linear_problem, within_reach
from fftconv._core.request import Request
from fftconv._core.shapes import extension
from fftconv._methods import RUNNERS
from fftconv._methods import direct as direct_method
from fftconv._methods import structured as structured_method
from fftconv._methods.spectra import SHARED, SpectrumCache
from fftconv._planning import autotune, structured
from fftconv._planning.planner import Plan, Planner
from fftconv._registry import load_backend


def make_planner(settings: _config.Settings, kernel_ready: bool = False) -> Planner:
    return Planner(load_backend(settings.backend), settings.threads(), settings.memory_limit,
                   kernel_ready=kernel_ready)


def shape_problem(request: Request) -> LinearProblem:
    """The request's LinearProblem with zero-stride stand-ins for the data (nothing allocated)."""
    shape = list(request.image.shape)
    windows = request.windows
    if request.boundary != "constant":
        moved = []
        for ax, (a, b) in zip(request.axes, request.windows):
            left, right = extension(shape[ax], request.kernel.shape[ax], (a, b))
            shape[ax] += left + right
            moved.append((a + left, b + left))
        windows = tuple(moved)
    y = np.broadcast_to(np.zeros((), dtype=request.image.dtype), shape)
    return within_reach(LinearProblem(y, request.kernel, request.axes, windows))


def plan_request(request: Request, settings: _config.Settings,
                 spectra: SpectrumCache | None = None, kernel_ready: bool | None = None) -> Plan:
    # Plans depend on shapes only: plan on stand-ins, so a direct 'same' call can go
    # straight to OpenCV's own borders without building the extended image first.
    ready = spectra is not None if kernel_ready is None else kernel_ready
    planner = make_planner(settings, kernel_ready=ready)
    return planner.plan(shape_problem(request), request.method)


def default_spectra(settings: _config.Settings) -> SpectrumCache | None:
    if settings.spectrum_cache <= 0:
        return None
    if SHARED.entries != settings.spectrum_cache:
        SHARED.resize(settings.spectrum_cache)
    return SHARED


def compute(request: Request, settings: _config.Settings,
            spectra: SpectrumCache | None = None) -> np.ndarray:
    """Run a request whose inputs are finite (structured kernels first, when cheaper)."""
    return route(request, settings, spectra)(request)


def route(request: Request, settings: _config.Settings, spectra: SpectrumCache | None = None,
          passes: Callable[[Request], np.ndarray] | None = None
          ) -> Callable[[Request], np.ndarray]:
    """How :func:`compute` runs ``request``, decided now: a function of the request.

    It runs any request like this one (same kernel object, options, image
    shape and dtype; other image values) without planning again.  A
    structured kernel's passes go through ``passes`` (by default planned each
    time, as :func:`compute_general`).
    """
    if request.method == "auto":
        chosen = structured.choose(request, settings, plan_request)
        if chosen is not None:
            if passes is None:
                passes = functools.partial(compute_general, settings=settings, spectra=spectra)
            return functools.partial(structured_method.run, chosen.structure,
                                     compute_general=passes)
    return general_route(request, settings, spectra)


def general_route(request: Request, settings: _config.Settings,
                  spectra: SpectrumCache | None = None,
                  kernel_ready: bool | None = None) -> Callable[[Request], np.ndarray]:
    """:func:`route` among the three general methods only.

    ``kernel_ready=False`` prices the kernel's transform although ``spectra``
    keeps it (the plan :func:`fftconv.convolve` makes), yet runs with them.
    """
    plan = plan_request(request, settings, spectra, kernel_ready)
    if request.method == "auto" and settings.autotune:
        plan = autotune.best(request, plan, settings, spectra, run_plan)
    if plan.method == "direct":
        # 'same' on OpenCV's own borders, straight from the image, when it can.
        opencv = direct_method.opencv_same_route(request)
        if opencv is not None:
            return opencv
    return functools.partial(run_plan, plan=plan, settings=settings, spectra=spectra)


def compute_general(request: Request, settings: _config.Settings,
                    spectra: SpectrumCache | None = None) -> np.ndarray:
    """Run a request with one of the three general methods."""
    return general_route(request, settings, spectra)(request)


def static_plan(request: Request, settings: _config.Settings,
                spectra: SpectrumCache | None = None) -> Plan | None:
    """The general-method plan :func:`compute` will run for ``request``, known from shapes.

    None when the choice waits for the data or the clock: a structured kernel
    path (``method="auto"``) or autotuning.  For callers that prepare buffers
    for the plan (:mod:`fftconv._tiling.tiled`) and must agree with :func:`compute`.
    """
    if request.method == "auto" and (
            settings.autotune or structured.choose(request, settings, plan_request) is not None):
        return None
    return plan_request(request, settings, spectra)


def run_plan(request: Request, plan: Plan, settings: _config.Settings,
             spectra: SpectrumCache | None) -> np.ndarray:
    """Run one general method on the request's real data."""
    problem = linear_problem(request.image, request.kernel, request.axes, request.windows,
                             request.boundary, request.cval)
    plan = dataclasses.replace(plan, spectra=spectra if spectra is not None
                               else default_spectra(settings))
    out = RUNNERS[plan.method](problem, plan)
    if problem.offset is not None:
        out += problem.offset
    return out


def run_request(request: Request, settings: _config.Settings,
                spectra: SpectrumCache | None = None,
                finite: Callable[[Request], np.ndarray] | None = None) -> np.ndarray:
    """Apply ``nan_policy`` around ``finite``, by default :func:`compute`."""
    if finite is None:
        finite = functools.partial(compute, settings=settings, spectra=spectra)
    with _config.in_effect(settings):
        if request.nan_policy == "raise":
            nonfinite.check_raise(request)
            return finite(request)
        if request.nan_policy == "interpolate":
            return nonfinite.interpolate(request, finite)
        return nonfinite.propagate(request, finite)
