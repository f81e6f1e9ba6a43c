"""Planning: how a call runs, decided from shapes and this machine's measured rates.

Glossary (one word per concept, used throughout fftconv):

plan
    A :class:`~.planner.Plan`: one general method (``direct``, ``fft`` or
    ``overlap-add``) with its FFT shape, block shape, backend and threads,
    chosen by the :class:`~.planner.Planner` from every candidate's estimate.
candidate
    A :class:`~.planner.Candidate`: one method's estimated seconds and working
    bytes for a problem; a plan holds all of them (``plan.explain()``).
rates
    :class:`~.planner.Rates`: the cost model's seconds per unit of work, the
    defaults or this machine's (``fftconv calibrate``, :mod:`.rates`).
structured route
    A separable, low-rank or box kernel run as passes of smaller kernels (or
    running sums): a :class:`~.structured.Choice`, taken when its passes are
    estimated faster than the plan (:func:`~.structured.choose`).
route
    What a request runs as, decided once: a function of the request that runs
    any request with the same kernel, shapes and options (:func:`route`).  A
    *general route* is one of the three general methods only, no structured
    route (a structured route's passes are general routes).
routes
    Routes kept for reuse: :class:`Routes` (a Convolver's, by shape) and
    :data:`CALLS` (``fftconv.convolve``'s, by the kernel's values).
block
    The output extent one overlap-add transform computes (``plan.block_shape``).
tile
    The extent one Dask task computes (:mod:`fftconv._tiling`), with its
    halo: the kernel's reach into the neighbouring chunks.

The layer's interface is below; the methods that run a plan are in
:mod:`fftconv._methods`, below this package.
"""

from fftconv._planning.engine import (
    compute,
    compute_general,
    general_route,
    make_planner,
    plan_request,
    route,
    run_plan,
    run_request,
    shape_problem,
    static_plan,
)
from fftconv._planning.planner import Candidate, Plan, Planner, Rates
from fftconv._planning.rates import rates_for
from fftconv._planning.routes import CALLS, CallRoutes, Routes

__all__ = [
    "CALLS", "CallRoutes", "Candidate", "Plan", "Planner", "Rates", "Routes",
    "compute", "compute_general", "general_route", "make_planner", "plan_request", "rates_for",
    "route", "run_plan", "run_request", "shape_problem", "static_plan",
]
