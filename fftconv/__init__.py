"""fftconv: exact, fast, memory-bounded N-D convolution of large images with large kernels.

Importing fftconv reads no files, scans no entry points and imports neither
scipy nor pyfftw nor dask: all of that happens on first use.
"""

from fftconv import kernels
from fftconv._core import settings as config
from fftconv._core.settings import set_backend
from fftconv._infra.cache import clear_caches
from fftconv._io import Image, open_image, write_image
from fftconv._ops import (
    Convolver,
    KernelFit,
    convolve,
    convolve_vjp,
    correlate,
    correlate_vjp,
    estimate_kernel,
    match_template,
    plan,
    window_sum,
)
from fftconv._registry import BackendError, available_backends, get_backend, refresh_backends

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Convolver",
    "Image",
    "KernelFit",
    "available_backends",
    "clear_caches",
    "config",
    "convolve",
    "convolve_vjp",
    "correlate",
    "correlate_vjp",
    "estimate_kernel",
    "get_backend",
    "kernels",
    "match_template",
    "open_image",
    "plan",
    "refresh_backends",
    "set_backend",
    "window_sum",
    "write_image",
]


def __getattr__(name: str):
    # The scipy drop-ins load on first use: ``fftconv.ndimage.convolve`` works after
    # ``import fftconv`` alone, as ``from fftconv import ndimage`` does.
    if name in ("ndimage", "signal"):
        import importlib

        return importlib.import_module(f"fftconv.{name}")
    raise AttributeError(f"module 'fftconv' has no attribute {name!r}")
