"""numpy.fft backend: always available, single-threaded (pocketfft, 5-smooth fast lengths)."""

from __future__ import annotations

import numpy as np
from fftconv.backends import CONTRACT_VERSION, Capabilities, next_smooth


class NumpyBackend:
    """FFTs through :mod:`numpy.fft` (NumPy >= 2 keeps float32 as complex64)."""

    name = "numpy"
    contract_version = CONTRACT_VERSION
    requires: tuple[str, ...] = ()
    install_hint = "pip install numpy"
    priority = 0

    def __init__(self) -> None:
        self.version = np.__version__
        major = int(np.__version__.split(".")[0])
        single = ("float32", "complex64") if major >= 2 else ()
        self.capabilities = Capabilities(
            native_dtypes=frozenset(np.dtype(t) for t in ("float64", "complex128", *single)),
            threads=False,
        )

    def rfftn(self, x, s, axes, workers=1):
        return _in_precision_of(x, np.fft.rfftn(x, s=s, axes=axes))

    def irfftn(self, x, s, axes, workers=1):
        return _in_precision_of(x, np.fft.irfftn(x, s=s, axes=axes))

    def fftn(self, x, s, axes, workers=1):
        return _in_precision_of(x, np.fft.fftn(x, s=s, axes=axes))

    def ifftn(self, x, s, axes, workers=1):
        return _in_precision_of(x, np.fft.ifftn(x, s=s, axes=axes))

    def next_fast_len(self, n: int, real: bool = True) -> int:
        return next_smooth(n, (2, 3, 5))


def _in_precision_of(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` in ``x``'s precision, as the contract asks: NumPy before 2.0 transforms
    single precision in double and returns complex128 (NumPy 2 keeps it: no copy)."""
    if np.dtype(x.dtype) not in (np.float32, np.complex64):
        return out
    return out.astype(np.complex64 if out.dtype.kind == "c" else np.float32, copy=False)
