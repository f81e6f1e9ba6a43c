"""A forward/inverse transform pair at one circular shape, through a backend."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Below this many elements in one call, a transform's threads cost more than they save:
# scipy.fft with 2 threads took 45 µs on 48² against 15 µs with one, and broke even at
# 256²; at 512² two threads are 1.8× faster.
THREADED_MIN_ELEMENTS = 1 << 17


class Transform:
    """Real (rfftn/irfftn) or complex (fftn/ifftn) transforms of shape ``shape`` over ``axes``."""

    def __init__(self, backend, shape: Sequence[int], axes: Sequence[int], real: bool,
                 dtype: np.dtype, workers: int) -> None:
        self.backend = backend
        self.shape = tuple(int(n) for n in shape)
        self.axes = tuple(axes)
        self.real = real
        self.dtype = np.dtype(dtype)
        self.workers = workers

    def forward(self, x: np.ndarray) -> np.ndarray:
        fn = self.backend.rfftn if self.real else self.backend.fftn
        return fn(x, self.shape, self.axes, self.threads_for(x))

    def inverse(self, spectrum: np.ndarray) -> np.ndarray:
        fn = self.backend.irfftn if self.real else self.backend.ifftn
        out = fn(spectrum, self.shape, self.axes, self.threads_for(spectrum))
        return out if out.dtype == self.dtype else out.astype(self.dtype)

    def threads_for(self, x: np.ndarray) -> int:
        """``workers``, or 1 when the call transforms too few elements to share them."""
        batch = x.size // max(1, math.prod(x.shape[ax] for ax in self.axes))
        return self.workers if batch * math.prod(self.shape) >= THREADED_MIN_ELEMENTS else 1

    @staticmethod
    def multiply(spectrum: np.ndarray, kernel_spectrum: np.ndarray) -> np.ndarray:
        """The product, in place unless broadcasting makes it larger than ``spectrum``."""
        if spectrum.shape == np.broadcast_shapes(spectrum.shape, kernel_spectrum.shape):
            spectrum *= kernel_spectrum
            return spectrum
        return spectrum * kernel_spectrum

    def convolve(self, x: np.ndarray, kernel_spectrum: np.ndarray) -> np.ndarray:
        """Circular convolution of ``x`` (zero-padded to ``shape``) with a ready spectrum."""
        return self.inverse(self.multiply(self.forward(x), kernel_spectrum))


def window_slices(ndim: int, axes: Sequence[int], starts: Sequence[int],
                  stops: Sequence[int]) -> tuple[slice, ...]:
    """Index selecting ``[starts[i], stops[i])`` on ``axes[i]`` and everything elsewhere."""
    index = [slice(None)] * ndim
    for ax, start, stop in zip(axes, starts, stops):
        index[ax] = slice(start, stop)
    return tuple(index)
