"""window_sum: the sum over every window, by running sums, in time independent of its size.

One float64 (complex128) cumulative sum per axis, of the data minus its
mean, and one subtraction per window: data with a large offset stays exact
to SPEC §1.3.
"""

from __future__ import annotations

import numpy as np

from fftconv import _config, _nonfinite
from fftconv._methods.direct import data_window
from fftconv._problem import linear_problem
from fftconv._request import build_request
from fftconv._shapes import normalize_axes


def running_sum(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``out[i] = x[i : i + k].sum()`` along ``axis`` (length ``n - k + 1``), in float64.

    One cumulative sum along the axis (vectorised across the others, so no
    transposed copy), each window one subtraction.  The axis mean is removed
    first: the prefix sums then stay small however large the data's offset,
    and their rounding stays far below SPEC §1.3.
    """
    acc = np.result_type(x.dtype, np.float64)
    n = x.shape[axis]
    mean = x.mean(axis=axis, keepdims=True, dtype=acc)
    prefix = np.subtract(x, mean, dtype=acc)
    accumulate(prefix, axis)

    def part(start, stop):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, stop)
        return tuple(index)

    out = np.empty(prefix[part(k - 1, None)].shape, dtype=acc)
    out[part(0, 1)] = prefix[part(k - 1, k)]
    np.subtract(prefix[part(k, None)], prefix[part(0, n - k)], out=out[part(1, None)])
    out += k * mean
    return out


def accumulate(a: np.ndarray, axis: int) -> None:
    """In-place cumulative sum along ``axis``.

    ``np.cumsum`` along a leading axis walks memory with a stride (566 ms on a
    4096² float64 array, against 75 ms along the last axis); adding whole
    slices one after another keeps every add contiguous.
    """
    n = a.shape[axis]
    if axis == a.ndim - 1 or a.size // max(n, 1) < 256:
        np.cumsum(a, axis=axis, out=a)
        return
    moved = np.moveaxis(a, axis, 0)
    for i in range(1, n):
        np.add(moved[i], moved[i - 1], out=moved[i])


def _sizes(size, axes: tuple[int, ...]) -> tuple[int, ...]:
    sizes = (size,) * len(axes) if np.ndim(size) == 0 else tuple(size)
    if len(sizes) != len(axes):
        raise ValueError(f"size={size!r} needs one length per convolved axis ({len(axes)})")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
            raise ValueError(f"size={size!r} must be positive ints")
    return tuple(int(s) for s in sizes)


def window_sum(array, size, mode="same", *, boundary="constant", cval=0.0, axes=None,
               dtype=None):
    """Sum over every ``size`` window: ``convolve(array, np.ones(size), ...)``, fast.

    Time does not depend on ``size``; sums accumulate in float64, so data with
    a large offset keeps full accuracy.  A non-finite input makes NaN exactly
    the windows that contain it.

    Parameters
    ----------
    array : array_like
    size : int or sequence of int
        Window length, one for every convolved axis or one for all.
    mode, boundary, cval, axes, dtype
        As in :func:`fftconv.convolve` (``dtype="float64"`` keeps the float64 sums).

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
                            dtype, flip=False)
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
