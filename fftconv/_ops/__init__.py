"""The operations: validate the arguments, resolve the settings, hand over.

Each public function is a thin adapter: an in-memory call goes to the
planning layer's engine (:mod:`fftconv._planning`), a dask array to the halo
tiling (:mod:`fftconv._tiling`).  ``calibrate`` times the public API to
measure the cost model's rates (``fftconv calibrate``).
"""

from fftconv._ops.adjoint import convolve_vjp, correlate_vjp
from fftconv._ops.api import convolve, correlate, plan
from fftconv._ops.convolver import Convolver
from fftconv._ops.estimate import estimate_kernel
from fftconv._ops.kernel_fit import KernelFit
from fftconv._ops.template import match_template
from fftconv._ops.window import window_sum

__all__ = [
    "Convolver", "KernelFit", "convolve", "convolve_vjp", "correlate", "correlate_vjp",
    "estimate_kernel", "match_template", "plan", "window_sum",
]
