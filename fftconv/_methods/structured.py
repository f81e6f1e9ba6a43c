"""Run a structured kernel's passes (see :mod:`fftconv._core.structure`).

Which kernels take this route, and when, is decided by
:mod:`fftconv._planning.structured`; here the passes run: one per factor and
axis of each rank-1 term (summed), or running sums for a box.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fftconv._core.shapes import output_window
from fftconv._core.structure import Structure, pass_cvals
from fftconv._methods.box import box_sum


def pass_requests(request, factors: tuple[np.ndarray, ...]):
    """One request per factor, each on the previous pass's output shape.

    A factor's pass takes the request's window along its own axis (any window,
    not only a mode's) and the whole axis along the others, where it is 1 long.
    """
    shape = list(request.image.shape)
    for factor, cval in zip(factors, pass_cvals(factors, request.cval)):
        windows = tuple(window if factor.shape[ax] > 1 else output_window(shape[ax], 1, "same")
                        for ax, window in zip(request.axes, request.windows))
        yield shape, factor, cval, windows
        for ax, (a, b) in zip(request.axes, windows):
            shape[ax] = b - a


def run(structure: Structure, request, compute_general: Callable) -> np.ndarray:
    """The request through its structure's passes, each run by ``compute_general``."""
    if structure.kind == "box":
        return box_sum(request, structure.value)
    out = None
    for term in structure.terms:
        part = request.image
        for _, factor, cval, windows in pass_requests(request, term):
            part = compute_general(request.replace(image=part, kernel=factor, cval=cval,
                                                 windows=windows, method="auto"))
        out = part if out is None else np.add(out, part, out=out)
    return out
