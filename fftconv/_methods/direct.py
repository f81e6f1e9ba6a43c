"""Direct convolution: a sum over the kernel's non-zero taps, never an FFT.

Two engines compute the same valid correlation of the zero-extended data
with the flipped kernel:

* OpenCV's ``filter2D`` (SIMD, multithreaded) for real float32/float64 2-D
  planes, and for kernels along one axis of any array (1-D kernels, each pass
  of a separable one: rows, or one pixel wide down planes), small enough that
  OpenCV stays in its direct loop (below its DFT switch-over), when
  ``opencv-python-headless`` is installed;
* a NumPy shift-and-add over output stripes (any dtype, any ndim, batch
  broadcasting), run on ``plan.threads`` threads.  Its working memory is a few
  stripes, whatever the kernel size — unlike scipy.ndimage, which allocates
  about 8·K⁴ bytes of offsets for a K×K kernel.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable

import numpy as np

from fftconv._core.boundary import full_pad_width
from fftconv._core.problem import LinearProblem
from fftconv._infra.cache import memoized
from fftconv._infra.threads import run_all
from fftconv._methods.transform import window_slices

STRIPE_ELEMENTS = 1 << 16
# A cv::Mat's rows and columns are C ints.
OPENCV_MAX_SIDE = 2**31 - 1
# A 1-D filter runs down planes this wide at least, else along rows (_filter_along).
OPENCV_MIN_COLUMNS = 16
# Rows this short are filtered as one matrix product (_filter_along).
MATRIX_MAX_LENGTH = 16
# OpenCV's filter2D switches to its DFT path at these kernel areas (filter.dispatch.cpp).
OPENCV_DIRECT_AREA = {np.dtype("float32"): 130, np.dtype("float64"): 50}


def run(problem: LinearProblem, plan) -> np.ndarray:
    """Valid correlation of the zero-extended data window with the flipped kernel."""
    data = data_window(problem)
    flipped = np.flip(problem.kernel, axis=problem.axes)
    if opencv_applies(problem):
        return _opencv(problem, data, flipped)
    return _shift_and_add(problem, data, flipped, plan.threads)


@memoized("OpenCV installed", entries=1)
def opencv_installed() -> bool:
    return importlib.util.find_spec("cv2") is not None


def opencv_applies(problem: LinearProblem) -> bool:
    """True when the OpenCV engine computes this problem directly."""
    return _opencv_fits(problem.dtype, problem.y.shape, problem.kernel.shape, problem.axes)


def _opencv_fits(dtype: np.dtype, shape: tuple[int, ...], kernel_shape: tuple[int, ...],
                 axes: tuple[int, ...]) -> bool:
    """Whether filter2D's direct loop takes these planes (2-D) or this line filter (a
    1-D kernel, or one pass of a separable N-D one: :func:`line_axis`)."""
    limit = OPENCV_DIRECT_AREA.get(dtype)
    lengths = [kernel_shape[ax] for ax in axes]
    if limit is None or math.prod(lengths) >= limit or not opencv_installed():
        return False
    if len(axes) == 2:
        return all(shape[ax] <= OPENCV_MAX_SIDE for ax in axes)
    return (line_axis(kernel_shape, axes) is not None
            and math.prod(shape) <= OPENCV_MAX_SIDE)  # rows, or a plane's columns


def line_axis(kernel_shape: tuple[int, ...], axes: tuple[int, ...]) -> int | None:
    """The one axis a kernel runs along, where it is 1 long on every other axis (batch
    axes too: a kernel per line would be a call per line); None for any other kernel.

    Examples
    --------
    >>> line_axis((1, 9, 1), (0, 1, 2)), line_axis((9,), (0,)), line_axis((3, 9, 1), (0, 1, 2))
    (1, 0, None)
    """
    long = [ax for ax in axes if kernel_shape[ax] > 1]
    if math.prod(kernel_shape) != math.prod(kernel_shape[ax] for ax in axes) or len(long) > 1:
        return None
    return long[0] if long else axes[0]


def _filter_along(data: np.ndarray, taps: np.ndarray, axis: int, anchor: int,
                  border: int) -> np.ndarray:
    """filter2D of ``data`` along one ``axis`` with the 1-D ``taps`` (correlated, from
    ``anchor``), as a 2-D filter one pixel across: on ``(N, trailing)`` planes, where the
    axis has enough elements after it (no transposes), else on rows.

    A transposed copy in and out cost three times the filter: 56 ms against 25 ms by
    overlap-add for 31 taps down the columns of a 2048² image.
    """
    import cv2

    n, after = data.shape[axis], data.shape[axis + 1:]
    trailing = math.prod(after)
    if trailing >= OPENCV_MIN_COLUMNS:
        planes = np.ascontiguousarray(data).reshape(-1, n, trailing)
        column = np.ascontiguousarray(taps.reshape(-1, 1))
        out = np.empty_like(planes)
        for plane, into in zip(planes, out):
            cv2.filter2D(plane, -1, column, dst=into, anchor=(0, anchor), borderType=border)
        return out.reshape(data.shape)
    moved = np.moveaxis(data, axis, -1)
    rows = np.ascontiguousarray(moved).reshape(-1, n)
    row_taps = np.ascontiguousarray(taps.reshape(1, -1))
    if n <= MATRIX_MAX_LENGTH:
        # The filter is linear: row @ M, M's rows the filtered unit rows (borders
        # included).  OpenCV's per-row work dominates short rows; one BLAS product took
        # 8 ms against 63 ms for 2048²×3 ⊛ 5 taps along the channels.  A zero entry
        # of M is harmless: the data is finite here (nan_policy runs before).
        matrix = cv2.filter2D(np.eye(n, dtype=rows.dtype), -1, row_taps, anchor=(anchor, 0),
                              borderType=border)
        out = rows @ matrix
    else:
        out = cv2.filter2D(rows, -1, row_taps, anchor=(anchor, 0), borderType=border)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def data_window(problem: LinearProblem) -> np.ndarray:
    """The data the window reads, ``[a - K + 1, b)`` per axis, zero outside ``y``."""
    y = problem.y
    lo, hi, pads = [], [], []
    for ax, (a, b), k in zip(problem.axes, problem.windows, problem.kernel_lengths):
        start, stop = a - k + 1, b
        lo.append(max(0, start))
        hi.append(min(y.shape[ax], stop))
        pads.append((max(0, -start), max(0, stop - y.shape[ax])))
    inside = y[window_slices(y.ndim, problem.axes, lo, hi)]
    if not any(any(p) for p in pads):
        return inside
    return np.pad(inside, full_pad_width(y.ndim, problem.axes, pads))


def _batch_last(problem: LinearProblem, array: np.ndarray) -> np.ndarray:
    """Move the convolved axes last, keeping their order."""
    return np.moveaxis(array, problem.axes, range(-len(problem.axes), 0))


def _restore(problem: LinearProblem, array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, range(-len(problem.axes), 0), problem.axes)


def _shift_and_add(problem: LinearProblem, data: np.ndarray, flipped: np.ndarray,
                   threads: int) -> np.ndarray:
    nconv = len(problem.axes)
    src = _batch_last(problem, data)
    ker = _batch_last(problem, flipped)
    out_conv = tuple(b - a for a, b in problem.windows)
    batch = np.broadcast_shapes(src.shape[:-nconv], ker.shape[:-nconv])
    out = np.zeros((*batch, *out_conv), dtype=problem.dtype)
    nonzero = np.any(ker != 0, axis=tuple(range(ker.ndim - nconv)))
    taps = [tuple(t) for t in np.argwhere(nonzero)]
    weights = [ker[(..., *t)].reshape(ker.shape[:-nconv] + (1,) * nconv) for t in taps]
    step = stripe_rows(math.prod(out.shape), out_conv[0])
    stripes = [(r, min(r + step, out_conv[0])) for r in range(0, out_conv[0], step)]

    def stripe(bounds: tuple[int, int]) -> None:
        r0, r1 = bounds
        acc = out[(..., slice(r0, r1), *[slice(None)] * (nconv - 1))]
        scratch = np.empty(acc.shape, dtype=acc.dtype)
        for tap, weight in zip(taps, weights):
            view = src[(..., slice(tap[0] + r0, tap[0] + r1),
                        *[slice(t, t + n) for t, n in zip(tap[1:], out_conv[1:])])]
            np.multiply(view, weight, out=scratch)
            acc += scratch

    run_all(stripe, stripes, threads)
    return _restore(problem, out)


def stripe_rows(outputs: int, rows: int) -> int:
    """Rows (of the first convolved axis) in one stripe of the NumPy loop: about
    ``STRIPE_ELEMENTS`` outputs, so a tap's product stays in cache."""
    return max(1, STRIPE_ELEMENTS // max(1, outputs // max(1, rows)))


def stripe_count(out_shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    """How many stripes the NumPy loop splits an output of ``out_shape`` into."""
    rows = out_shape[axes[0]]
    return math.ceil(rows / stripe_rows(math.prod(out_shape), rows))


def _opencv(problem: LinearProblem, data: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    import cv2

    out_hw = tuple(b - a for a, b in problem.windows)
    if len(out_hw) != 2:  # along a line: the data's other axes are the output's already
        axis = line_axis(problem.kernel.shape, problem.axes)
        full = _filter_along(data.astype(problem.dtype, copy=False),
                             flipped.astype(problem.dtype, copy=False), axis, 0,
                             cv2.BORDER_CONSTANT)
        return full[window_slices(full.ndim, (axis,), [0], [out_hw[problem.axes.index(axis)]])]
    src = _batch_last(problem, data)
    ker = _batch_last(problem, flipped)
    if src.ndim == 2:
        # One plane: the result is a window of OpenCV's output, as along a line, not a
        # copy.  The copy into a fresh array, page faults and all, cost more than the
        # filter: a Dask block of 1024² ⊛ 5² took 3.6 ms against 0.9 without it.
        return _restore(problem, _correlate_plane(src, ker, problem.dtype, out_hw))
    batch = np.broadcast_shapes(src.shape[:-2], ker.shape[:-2])
    out = np.empty((*batch, *out_hw), dtype=problem.dtype)
    src_b = np.broadcast_to(src, (*batch, *src.shape[-2:]))
    ker_b = np.broadcast_to(ker, (*batch, *ker.shape[-2:]))
    for index in np.ndindex(*batch):
        out[index] = _correlate_plane(src_b[index], ker_b[index], problem.dtype, out_hw)
    return _restore(problem, out)


def _correlate_plane(plane: np.ndarray, taps: np.ndarray, dtype: np.dtype,
                     out_hw: tuple[int, int]) -> np.ndarray:
    """The first ``out_hw`` of ``plane`` correlated with ``taps`` by OpenCV: a window."""
    import cv2

    # anchor (0, 0) makes filter2D a plain correlation: dst[i, j] = sum k[u, v] src[i+u, j+v]
    full = cv2.filter2D(np.ascontiguousarray(plane, dtype=dtype), -1,
                        np.ascontiguousarray(taps, dtype=dtype), anchor=(0, 0),
                        borderType=cv2.BORDER_CONSTANT)
    return full[: out_hw[0], : out_hw[1]]


def opencv_borders() -> dict[str, int]:
    import cv2

    # filter2D has no wrap mode; its constant border is always 0.
    return {"reflect": cv2.BORDER_REFLECT, "mirror": cv2.BORDER_REFLECT_101,
            "nearest": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


def opencv_same(request) -> np.ndarray | None:
    """'same' mode straight from the image with OpenCV's own borders (no padded copy).

    None when OpenCV cannot give exactly the SPEC result (see :func:`opencv_same_route`).
    """
    run = opencv_same_route(request)
    return None if run is None else run(request)


def opencv_same_route(request) -> Callable | None:
    """:func:`opencv_same` for every request like ``request``, prepared once, or None.

    The returned function takes a request with the same kernel values, options
    and image shape and dtype (other image values) and returns its result; the
    kernel is flipped and laid out here, not on every call (a quarter of a
    32² ⊛ 3² call).  None when OpenCV cannot give exactly the SPEC result:
    neither 2-D nor along a line (:func:`line_axis`), not real float, kernel
    past the direct switch-over, wrap or non-zero ``cval``.  An extension
    longer than the image is fine: OpenCV's borders repeat the rule as
    ``np.pad`` does (checked up to 129 taps over 1 to 7 samples, every border).
    """
    if (request.mode != "same" or request.boundary == "wrap"
            or (request.boundary == "constant" and request.cval != 0)
            or not _opencv_fits(request.dtype, request.image.shape, request.kernel.shape,
                                request.axes)):
        return None
    lengths = [request.kernel.shape[ax] for ax in request.axes]
    import cv2

    border = opencv_borders()[request.boundary]
    # out[j] = sum_u flip(k)[u] x[j + u - (K - 1 - s)], s = (K - 1) // 2: the anchor is K-1-s
    anchor = tuple(k - 1 - (k - 1) // 2 for k in lengths)[::-1]
    dtype = request.dtype
    # Copies: a route kept by the kernel's values serves other arrays with those values,
    # and the caller may change this one later.
    if len(lengths) != 2:
        axis = line_axis(request.kernel.shape, request.axes)
        taps = np.flip(request.kernel).astype(dtype)
        at = anchor[::-1][request.axes.index(axis)]
        return lambda r: _filter_along(r.image.astype(dtype, copy=False), taps, axis, at, border)
    ker = np.flip(request.kernel, axis=request.axes)
    last = (request.image.ndim - 2, request.image.ndim - 1)
    axes = request.axes
    if axes != last:  # moveaxis costs a tenth of a small image's filter
        ker = np.moveaxis(ker, axes, last)
    ker = np.array(ker, order="C")
    if request.image.ndim == 2:  # one plane: OpenCV's result is the answer, no copy
        return lambda r: cv2.filter2D(np.ascontiguousarray(r.image), -1, ker, anchor=anchor,
                                      borderType=border)

    # The batch follows from the shapes, which the route's key fixes; each plane's taps
    # are a C-ordered slice of ker, broadcast or not.
    hw = tuple(request.image.shape[ax] for ax in axes)
    rest = tuple(n for ax, n in enumerate(request.image.shape) if ax not in axes)
    batch = np.broadcast_shapes(rest, ker.shape[:-2])
    ker_b = np.broadcast_to(ker, (*batch, *ker.shape[-2:]))

    def planes(r) -> np.ndarray:
        src = r.image if axes == last else np.moveaxis(r.image, axes, last)
        out = np.empty((*batch, *hw), dtype=dtype)
        src_b = np.broadcast_to(src, (*batch, *hw))
        for index in np.ndindex(*batch):
            plane = np.ascontiguousarray(src_b[index])
            out[index] = cv2.filter2D(plane, -1, ker_b[index], anchor=anchor, borderType=border)
        return np.moveaxis(out, last, axes)

    return planes
