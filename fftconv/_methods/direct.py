"""Direct convolution: a sum over the kernel's non-zero taps, never an FFT.

Two engines compute the same valid correlation of the zero-extended data
with the flipped kernel:

* OpenCV's ``filter2D`` (SIMD, multithreaded) for real float32/float64 2-D
  planes with kernels small enough that OpenCV stays in its direct loop
  (below its DFT switch-over), when ``opencv-python-headless`` is installed;
* a NumPy shift-and-add over output stripes (any dtype, any ndim, batch
  broadcasting), run on ``plan.threads`` threads.  Its working memory is a few
  stripes, whatever the kernel size — unlike scipy.ndimage, which allocates
  about 8·K⁴ bytes of offsets for a K×K kernel.
"""

from __future__ import annotations

import functools
import importlib.util
import math

import numpy as np

from fftconv._boundary import full_pad_width
from fftconv._methods._transform import window_slices
from fftconv._problem import LinearProblem
from fftconv._threads import run_all

STRIPE_ELEMENTS = 1 << 16
# OpenCV's filter2D switches to its DFT path at these kernel areas (filter.dispatch.cpp).
OPENCV_DIRECT_AREA = {np.dtype("float32"): 130, np.dtype("float64"): 50}


def run(problem: LinearProblem, plan) -> np.ndarray:
    """Valid correlation of the zero-extended data window with the flipped kernel."""
    data = data_window(problem)
    flipped = np.flip(problem.kernel, axis=problem.axes)
    if opencv_applies(problem):
        return _opencv(problem, data, flipped)
    return _shift_and_add(problem, data, flipped, plan.threads)


@functools.lru_cache(maxsize=1)
def opencv_installed() -> bool:
    return importlib.util.find_spec("cv2") is not None


def opencv_applies(problem: LinearProblem) -> bool:
    """True when the OpenCV engine computes this problem directly."""
    limit = OPENCV_DIRECT_AREA.get(problem.dtype)
    return (
        limit is not None
        and len(problem.axes) == 2
        and math.prod(problem.kernel_lengths) < limit
        and opencv_installed()
    )


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
    row = math.prod(out.shape) // max(1, out_conv[0])
    step = max(1, STRIPE_ELEMENTS // max(1, row))
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


def _opencv(problem: LinearProblem, data: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    import cv2

    src = _batch_last(problem, data)
    ker = _batch_last(problem, flipped)
    out_hw = tuple(b - a for a, b in problem.windows)
    batch = np.broadcast_shapes(src.shape[:-2], ker.shape[:-2])
    out = np.empty((*batch, *out_hw), dtype=problem.dtype)
    src_b = np.broadcast_to(src, (*batch, *src.shape[-2:]))
    ker_b = np.broadcast_to(ker, (*batch, *ker.shape[-2:]))
    for index in np.ndindex(*batch):
        plane = np.ascontiguousarray(src_b[index], dtype=problem.dtype)
        taps = np.ascontiguousarray(ker_b[index], dtype=problem.dtype)
        # anchor (0, 0) makes filter2D a plain correlation: dst[i, j] = sum k[u, v] src[i+u, j+v]
        full = cv2.filter2D(plane, -1, taps, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
        out[index] = full[: out_hw[0], : out_hw[1]]
    return _restore(problem, out)


def opencv_borders() -> dict[str, int]:
    import cv2

    # filter2D has no wrap mode; its constant border is always 0.
    return {"reflect": cv2.BORDER_REFLECT, "mirror": cv2.BORDER_REFLECT_101,
            "nearest": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


def opencv_same(request) -> np.ndarray | None:
    """'same' mode straight from the image with OpenCV's own borders (no padded copy).

    Returns None when OpenCV cannot give exactly the SPEC result: not 2-D,
    not real float, kernel past the direct switch-over, wrap or non-zero
    ``cval``, or an extension longer than the image (OpenCV does not repeat
    the rule as np.pad does).
    """
    limit = OPENCV_DIRECT_AREA.get(request.dtype)
    if (limit is None or request.mode != "same" or len(request.axes) != 2
            or not opencv_installed() or request.boundary == "wrap"
            or (request.boundary == "constant" and request.cval != 0)):
        return None
    lengths = [request.kernel.shape[ax] for ax in request.axes]
    sizes = [request.image.shape[ax] for ax in request.axes]
    if math.prod(lengths) >= limit or any(k - 1 >= n for k, n in zip(lengths, sizes)):
        return None
    import cv2

    border = opencv_borders()[request.boundary]
    # out[j] = sum_u flip(k)[u] x[j + u - (K - 1 - s)], s = (K - 1) // 2: the anchor is K-1-s
    anchor = tuple(k - 1 - (k - 1) // 2 for k in lengths)[::-1]
    src = np.moveaxis(request.image, request.axes, (-2, -1))
    ker = np.moveaxis(np.flip(request.kernel, axis=request.axes), request.axes, (-2, -1))
    if src.ndim == 2:  # one plane: OpenCV's result is the answer, no copy
        return cv2.filter2D(np.ascontiguousarray(src), -1, np.ascontiguousarray(ker),
                            anchor=anchor, borderType=border)
    batch = np.broadcast_shapes(src.shape[:-2], ker.shape[:-2])
    out = np.empty((*batch, *src.shape[-2:]), dtype=request.dtype)
    src_b = np.broadcast_to(src, (*batch, *src.shape[-2:]))
    ker_b = np.broadcast_to(ker, (*batch, *ker.shape[-2:]))
    for index in np.ndindex(*batch):
        plane = np.ascontiguousarray(src_b[index])
        taps = np.ascontiguousarray(ker_b[index])
        out[index] = cv2.filter2D(plane, -1, taps, anchor=anchor, borderType=border)
    return np.moveaxis(out, (-2, -1), request.axes)
