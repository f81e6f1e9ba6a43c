"""The one problem every method solves: a window of a zero-padded linear convolution.

:func:`linear_problem` turns a validated request (any mode, any boundary) into
``window`` of ``y ⊛ kernel`` (``y`` zero outside its extent) plus a constant
``offset``: ``constant`` boundaries keep the image as it is (a non-zero
``cval`` is subtracted and its contribution ``cval * sum(kernel)`` added back),
every other boundary extends the image by exactly what the window reads.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fftconv._core.boundary import extend
from fftconv._core.shapes import Window, extension


@dataclasses.dataclass(frozen=True)
class LinearProblem:
    """``out = (y ⊛ kernel)[windows] + offset`` along ``axes``; other axes broadcast.

    ``kernel`` is in convolution orientation and has ``y``'s ndim.
    """

    y: np.ndarray
    kernel: np.ndarray
    axes: tuple[int, ...]
    windows: tuple[Window, ...]
    offset: np.ndarray | None = None

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.y.dtype, self.kernel.dtype)

    @property
    def is_real(self) -> bool:
        return self.dtype.kind == "f"

    @property
    def kernel_lengths(self) -> tuple[int, ...]:
        return tuple(self.kernel.shape[ax] for ax in self.axes)

    @property
    def data_lengths(self) -> tuple[int, ...]:
        return tuple(self.y.shape[ax] for ax in self.axes)

    @property
    def out_shape(self) -> tuple[int, ...]:
        shape = [max(n, k) for n, k in zip(self.y.shape, self.kernel.shape)]
        for ax, (a, b) in zip(self.axes, self.windows):
            shape[ax] = b - a
        return tuple(shape)

    @property
    def batch(self) -> int:
        """Independent convolutions computed at once (the broadcast non-convolved axes)."""
        shape = self.out_shape
        return math.prod(n for ax, n in enumerate(shape) if ax not in self.axes)


def linear_problem(image: np.ndarray, kernel: np.ndarray, axes: tuple[int, ...],
                   windows: tuple[Window, ...], boundary: str, cval: complex) -> LinearProblem:
    """Reduce one mode + boundary request to a :class:`LinearProblem`."""
    if boundary == "constant":
        if cval == 0:
            return within_reach(LinearProblem(image, kernel, axes, windows))
        # The offset is the whole kernel's: the taps past the data see only cval.
        offset = np.asarray(cval, dtype=image.dtype) * kernel.sum(axis=axes, keepdims=True)
        shifted = np.subtract(image, np.asarray(cval, dtype=image.dtype))
        return within_reach(LinearProblem(shifted, kernel, axes, windows, offset))
    pads = tuple(extension(image.shape[ax], kernel.shape[ax], w) for ax, w in zip(axes, windows))
    y = extend(image, axes, pads, boundary)
    shifted_windows = tuple((a + left, b + left) for (a, b), (left, _) in zip(windows, pads))
    return within_reach(LinearProblem(y, kernel, axes, shifted_windows))


def within_reach(problem: LinearProblem) -> LinearProblem:
    """``problem`` without the kernel's taps that meet no data in any wanted output.

    ``out[j]`` reads ``y[j - u]`` for ``0 <= j - u < n`` only, so over a window
    ``[a, b)`` the taps ``u`` outside ``[a - n + 1, b - 1]`` add nothing: a
    kernel more than twice as long as the data along an axis ('same' mode, a
    31-slice PSF over a 5-slice stack) loses its ends, and no method works on
    them (the direct method's zero-padded copy of the data was 11× the data for
    31 taps over 3 channels).

    Examples
    --------
    >>> p = within_reach(LinearProblem(np.ones((3,)), np.ones((31,)), (0,), ((15, 18),)))
    >>> p.kernel.shape, p.windows
    ((5,), ((2, 5),))
    """
    cuts, windows = [], []
    for ax, (a, b) in zip(problem.axes, problem.windows):
        n, k = problem.y.shape[ax], problem.kernel.shape[ax]
        lo, hi = max(0, a - n + 1), min(k, b)
        cuts.append((ax, lo, hi))
        windows.append((a - lo, b - lo))
    if all(lo == 0 and hi == problem.kernel.shape[ax] for ax, lo, hi in cuts):
        return problem
    index = [slice(None)] * problem.kernel.ndim
    for ax, lo, hi in cuts:
        index[ax] = slice(lo, hi)
    return dataclasses.replace(problem, kernel=problem.kernel[tuple(index)],
                               windows=tuple(windows))
