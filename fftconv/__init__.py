"""fftconv: exact, fast, memory-bounded N-D convolution of large images with large kernels.

Importing fftconv reads no files, scans no entry points and imports neither
scipy nor pyfftw nor dask: all of that happens on first use.
"""

from fftconv._core import settings as config
from fftconv._core.settings import set_backend
from fftconv._io.images import open_image, write_image
from fftconv._ops.adjoint import convolve_vjp, correlate_vjp
from fftconv._ops.api import convolve, correlate, plan
from fftconv._ops.convolver import Convolver
from fftconv._ops.estimate import KernelFit, estimate_kernel
from fftconv._ops.template import match_template
from fftconv._ops.window import window_sum
from fftconv._registry.discovery import (
    BackendError,
    available_backends,
    get_backend,
    refresh_backends,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Convolver",
    "KernelFit",
    "available_backends",
    "config",
    "convolve",
    "convolve_vjp",
    "correlate",
    "correlate_vjp",
    "estimate_kernel",
    "get_backend",
    "match_template",
    "open_image",
    "plan",
    "refresh_backends",
    "set_backend",
    "window_sum",
    "write_image",
]
