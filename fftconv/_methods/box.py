"""Box sums: the sum over every window by running sums, in time independent of its size.

Sums accumulate in float64 (complex128): sliding sums along leading axes,
prefix sums of the data minus its mean along the last, or OpenCV's box
filters for two axes when it is installed.  Data with a large offset stays
exact to SPEC §1.3.  The executor of a box kernel's route, of
:func:`fftconv.window_sum` and of the window moments of template matching.
"""

from __future__ import annotations

import numpy as np

from fftconv._core import nonfinite
from fftconv._core.boundary import source_index
from fftconv._core.problem import linear_problem
from fftconv._core.request import build_request
from fftconv._core.shapes import extension_doubles
from fftconv._methods.direct import data_window, opencv_installed


def running_sum(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``out[i] = x[i : i + k].sum()`` along ``axis`` (length ``n - k + 1``), in float64.

    Along a leading axis with wide rows, a sliding sum: each output row is the
    previous one plus the exact float64 difference of the row entering and
    the row leaving, so no prefix array is written and every add is
    contiguous (4× faster than prefix sums at 4096²).  Along the last axis
    (or narrow rows) prefix sums of the data minus its (rounded) axis mean.
    Either way the rounding grows like ``sqrt(n)`` float64 ulps of the sums,
    far below SPEC §1.3 however large the data's offset, and integer-valued
    data sums exactly.
    """
    n = x.shape[axis]
    if axis != x.ndim - 1 and x.size // max(n, 1) >= 256:
        return _sliding_sum(x, k, axis)
    return _prefix_sum(x, k, axis)


def _sliding_sum(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    acc = np.result_type(x.dtype, np.float64)
    rows = np.moveaxis(x, axis, 0)
    out = np.empty((rows.shape[0] - k + 1, *rows.shape[1:]), dtype=acc)
    np.sum(rows[:k], axis=0, dtype=acc, out=out[0])
    change = np.empty(rows.shape[1:], dtype=acc)
    for i in range(1, out.shape[0]):
        # float32 rows subtract exactly in float64; float64 rows round once.
        np.subtract(rows[i + k - 1], rows[i - 1], out=change, dtype=acc)
        np.add(out[i - 1], change, out=out[i])
    return np.moveaxis(out, 0, axis)


def _centre(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` minus its coarse mean along ``axis`` (float64 or complex128), and that mean."""
    acc = np.result_type(x.dtype, np.float64)
    mean = x.mean(axis=axis, keepdims=True, dtype=acc)
    mean = _coarse(mean.real) + 1j * _coarse(mean.imag) if acc.kind == "c" else _coarse(mean)
    return np.subtract(x, mean, dtype=acc), mean


def _prefix_sum(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    prefix, mean = _centre(x, axis)
    acc = prefix.dtype
    # Only the last axis, or a leading axis of narrow rows, comes here (wide rows
    # slide): np.cumsum is contiguous there, or its stride costs less than a row loop.
    np.cumsum(prefix, axis=axis, out=prefix)

    def part(start, stop):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, stop)
        return tuple(index)

    out = np.empty(prefix[part(k - 1, None)].shape, dtype=acc)
    out[part(0, 1)] = prefix[part(k - 1, k)]
    np.subtract(prefix[part(k, None)], prefix[part(0, n - k)], out=out[part(1, None)])
    out += k * mean
    return out


def _coarse(value: np.ndarray) -> np.ndarray:
    """``value`` rounded to 20 significant bits.

    Centring by it removes an offset as well as the exact mean does, and
    integer-valued data minus it, and every prefix sum of that, stay exactly
    representable: window sums of counts come out as exact integers.
    """
    mantissa, exponent = np.frexp(value)
    return np.ldexp(np.round(mantissa * 2.0**20), exponent - 20)


def valid_sums(data: np.ndarray, axes: tuple[int, ...], lengths: tuple[int, ...],
               *, square: bool = False) -> np.ndarray:
    """Float64 sums of ``data`` (or ``data**2``) over every full window along ``axes``.

    Two axes of real float data go to OpenCV's box filters when it is
    installed: one pass over the data, sliding sums in double, exact on
    integer-valued data; the result may then be a cropped view.  Otherwise
    one running sum per axis.
    """
    fast = _opencv_sums(data, axes, lengths, square)
    if fast is not None:
        return fast
    out = np.square(data, dtype=np.result_type(data.dtype, np.float64)) if square else data
    for ax, k in zip(axes, lengths):
        out = running_sum(out, k, ax)
    return out


def _opencv_sums(data, axes, lengths, square):
    if (len(axes) != 2 or data.dtype not in (np.float32, np.float64)
            or not opencv_installed() or 0 in data.shape):
        return None
    import cv2

    src = np.moveaxis(data, axes, (-2, -1))
    k0, k1 = lengths
    rows, cols = src.shape[-2] - k0 + 1, src.shape[-1] - k1 + 1
    box = cv2.sqrBoxFilter if square else cv2.boxFilter

    def plane(a):
        # anchor (0, 0): dst[i, j] = sum of src[i : i + k0, j : j + k1]
        full = box(np.ascontiguousarray(a), cv2.CV_64F, (k1, k0), normalize=False,
                   anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
        return full[:rows, :cols]

    if src.ndim == 2:
        out = plane(src)
    else:
        out = np.empty((*src.shape[:-2], rows, cols), dtype=np.float64)
        for index in np.ndindex(*src.shape[:-2]):
            out[index] = plane(src[index])
    return np.moveaxis(out, (-2, -1), axes)


def window_moments(image: np.ndarray, shape: tuple[int, ...], mode: str,
                   boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """``(Σx, Σx²)`` over every ``shape`` window of a finite real ``image``, in float64.

    The windows extend the image by ``boundary`` (``cval`` 0) exactly as
    :func:`window_sum` does; the boundary extension is made once for both.
    """
    kernel = np.broadcast_to(np.ones((), dtype=np.float32), shape)
    request = build_request(image, kernel, mode, boundary, 0.0, None, "direct", "propagate",
                            None, flip=False)
    problem = linear_problem(request.image, request.kernel, request.axes, request.windows,
                             request.boundary, 0.0)
    data = data_window(problem)
    lengths = problem.kernel_lengths
    return (valid_sums(data, problem.axes, lengths),
            valid_sums(data, problem.axes, lengths, square=True))


def box_sum(request, value=1.0) -> np.ndarray:
    """``convolve(image, value * ones(kernel.shape))`` for a finite request, by running sums.

    A boundary extension longer than the image (a box far larger than it) is
    summed without being made (:func:`extended_sums`).
    """
    if request.boundary != "constant" and extension_doubles(
            request.image.shape, request.kernel.shape, request.axes, request.windows):
        return _unextended_box_sum(request, value)
    problem = linear_problem(request.image, request.kernel, request.axes, request.windows,
                             request.boundary, request.cval)
    out = valid_sums(data_window(problem), problem.axes, problem.kernel_lengths)
    if value != 1.0:
        out *= value
    out = out.astype(request.dtype)
    if problem.offset is not None:
        out += problem.offset
    return out


def extended_sums(x: np.ndarray, k: int, axis: int, boundary: str, first: int,
                  count: int) -> np.ndarray:
    """``out[i] = ext[first + i : first + i + k].sum()`` along ``axis``, ``i < count``, where
    ``ext`` is ``x`` extended without end by a boundary rule other than ``constant``.

    The extension is never made: ``wrap``, ``reflect`` and ``mirror`` repeat a
    period of ``n``, ``2n`` and ``2n - 2`` samples (as ``np.pad`` does past the
    image), so a sum over any range is whole periods plus two prefix sums of
    one period; ``nearest`` adds the edge values times how far the range reaches
    past each edge.  Prefix sums are of the data minus its coarse mean, as in
    :func:`running_sum`, so the result is exact to float64 rounding however
    long the window.  Float64 (complex128) out.

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> extended_sums(x, 4, 0, "wrap", -2, 3)   # 2 3 1 2 | 3 1 2 3 | 1 2 3 1
    array([8., 9., 7.])
    """
    moved = np.moveaxis(x, axis, 0)
    n = moved.shape[0]
    period = {"wrap": n, "reflect": 2 * n, "mirror": max(2 * n - 2, 1), "nearest": n}[boundary]
    if period != n:
        moved = moved[source_index(n, (0, period - n), boundary)[:period]]
    centred, mean = _centre(moved, 0)
    prefix = np.zeros((period + 1, *moved.shape[1:]), dtype=centred.dtype)
    np.cumsum(centred, axis=0, out=prefix[1:])
    starts = first + np.arange(count)
    column = (slice(None), *([None] * (moved.ndim - 1)))
    if boundary == "nearest":
        lo, hi = np.clip(starts, 0, n), np.clip(starts + k, 0, n)
        before = (np.minimum(starts + k, 0) - np.minimum(starts, 0))[column]
        after = (np.maximum(starts + k - n, 0) - np.maximum(starts - n, 0))[column]
        out = prefix[hi] - prefix[lo] + before * centred[0] + after * centred[-1]
    else:
        # Whole periods apart times one period's sum: no two large prefixes cancel.
        (q0, r0), (q1, r1) = np.divmod(starts, period), np.divmod(starts + k, period)
        out = prefix[r1] - prefix[r0] + (q1 - q0)[column] * prefix[period]
    out += k * mean
    return np.moveaxis(out, 0, axis)


def _unextended_box_sum(request, value) -> np.ndarray:
    out = request.image
    for ax, (a, b) in zip(request.axes, request.windows):
        k = request.kernel.shape[ax]
        out = extended_sums(out, k, ax, request.boundary, a - k + 1, b - a)
    if value != 1.0:
        out *= value
    return out.astype(request.dtype)


def window_sums(array: np.ndarray, kernel: np.ndarray, mode: str, boundary: str, cval,
                axes, dtype) -> np.ndarray:
    """:func:`fftconv.window_sum` of an in-memory array: ``kernel`` holds the window's shape.

    A non-finite input makes NaN exactly the windows that contain it.
    """
    request = build_request(array, kernel, mode, boundary, cval, axes, "direct", "propagate",
                            dtype, flip=False)
    return nonfinite.propagate(request, box_sum)
