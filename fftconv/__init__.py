"""fftconv: exact, fast, memory-bounded N-D convolution of large images with large kernels.

Importing fftconv reads no files, scans no entry points and imports neither
scipy nor pyfftw nor dask: all of that happens on first use.
"""

from __future__ import annotations

from fftconv import _config as config
from fftconv._api import convolve, correlate, plan
from fftconv._config import set_backend
from fftconv._registry import BackendError, available_backends, get_backend, refresh_backends

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "available_backends",
    "config",
    "convolve",
    "correlate",
    "get_backend",
    "plan",
    "refresh_backends",
    "set_backend",
]
