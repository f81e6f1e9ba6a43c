"""window_sum: the sum over every window, by running sums, in time independent of its size.

Prefix sums restart for every ``block`` (>= window) outputs, so their rounding
grows with the block, not with the whole axis: a window sum is one difference
of prefix sums over at most ``block + window`` terms, accumulated in float64
(complex128).  Data with a large offset stays exact to SPEC §1.3.
"""

from __future__ import annotations

import numpy as np

from fftconv import _config, _nonfinite
from fftconv._methods.direct import data_window
from fftconv._problem import linear_problem
from fftconv._request import build_request
from fftconv._shapes import normalize_axes

BLOCK = 1024


def running_sum(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``out[i] = x[i : i + k].sum()`` along ``axis`` (length ``n - k + 1``), float64 sums.

    The axis is cut into overlapping segments of ``block + k - 1`` values, one
    per ``block`` outputs; a segment's prefix sums give its windows by one
    subtraction.  Only slicing: no gathers, and rounding bounded by the segment.
    """
    moved = np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    count = n - k + 1
    block = max(k, BLOCK)
    blocks = -(-count // block)
    padded = np.zeros((*moved.shape[:-1], blocks * block + k - 1),
                      dtype=np.result_type(moved.dtype, np.float64))
    padded[..., :n] = moved
    segments = np.lib.stride_tricks.sliding_window_view(padded, block + k - 1, axis=-1)
    prefix = np.cumsum(segments[..., ::block, :], axis=-1)
    sums = prefix[..., k - 1: k - 1 + block].copy()
    sums[..., 1:] -= prefix[..., : block - 1]
    out = sums.reshape(*moved.shape[:-1], blocks * block)[..., :count]
    return np.moveaxis(out, -1, axis)


def _sizes(size, axes: tuple[int, ...]) -> tuple[int, ...]:
    sizes = (size,) * len(axes) if np.ndim(size) == 0 else tuple(size)
    if len(sizes) != len(axes):
        raise ValueError(f"size={size!r} needs one length per convolved axis ({len(axes)})")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
            raise ValueError(f"size={size!r} must be positive ints")
    return tuple(int(s) for s in sizes)


def window_sum(array, size, mode="same", *, boundary="constant", cval=0.0, axes=None):
    """Sum over every ``size`` window: ``convolve(array, np.ones(size), ...)``, fast.

    Time does not depend on ``size``; sums accumulate in float64, so data with
    a large offset keeps full accuracy.  A non-finite input makes NaN exactly
    the windows that contain it.

    Parameters
    ----------
    array : array_like
    size : int or sequence of int
        Window length, one for every convolved axis or one for all.
    mode, boundary, cval, axes
        As in :func:`fftconv.convolve`.

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> fftconv.window_sum(np.arange(6.0), 3)
    array([ 1.,  3.,  6.,  9., 12.,  9.])
    >>> a, b = np.ones((4, 4)), np.full((4, 4), 2.0)
    >>> fftconv.window_sum(a**2 - b**2, 3, mode="valid")   # sum of A² − B² per window
    array([[-27., -27.],
           [-27., -27.]])
    """
    array = np.asarray(array)
    ndim = array.ndim
    conv_axes = normalize_axes(axes, ndim, ndim)
    sizes = _sizes(size, conv_axes)
    shape = [1] * ndim
    for ax, s in zip(conv_axes, sizes):
        shape[ax] = s
    kernel = np.broadcast_to(np.ones((), dtype=np.float32), shape)
    request = build_request(array, kernel, mode, boundary, cval, axes, "direct", "propagate",
                            None, flip=False)
    _config.resolve()  # a malformed configuration is reported here too
    return _nonfinite.propagate(request, box_sum)


def box_sum(request, value=1.0) -> np.ndarray:
    """``convolve(image, value * ones(kernel.shape))`` for a finite request, by running sums."""
    problem = linear_problem(request.image, request.kernel, request.axes, request.windows,
                             request.boundary, request.cval)
    out = data_window(problem)
    for ax, k in zip(problem.axes, problem.kernel_lengths):
        out = running_sum(out, k, ax)
    if value != 1.0:
        out *= value
    out = out.astype(request.dtype)
    if problem.offset is not None:
        out += problem.offset
    return out
