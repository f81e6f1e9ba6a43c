"""Structured kernels, run exactly as cheaper sequences of ordinary convolutions.

* **separable** (rank 1): ``k = f₀ ⊗ f₁ ⊗ …`` runs as one 1-D pass per axis;
* **low rank** (2-D): ``k = Σᵣ uᵣ ⊗ vᵣ`` (SVD) runs as ``r`` separable passes, summed;
* **box** (all taps equal): running sums, in time independent of the kernel size.

Each pass is an ordinary convolution with a kernel of length 1 on every other
convolved axis, so it goes through the planner like any call and obeys SPEC §1:
extending axis by axis is what ``np.pad`` does, padding along one axis
commutes with convolving along another, and a constant boundary's ``cval``
becomes ``cval · sum(earlier factors)`` for later passes.  Factors are kept
only when the reconstruction error is within a few units of the dtype's
round-off relative to the kernel, so results stay within SPEC §1.3.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

SVD_MAX_AREA = 256 * 256


@dataclasses.dataclass(frozen=True)
class Structure:
    """``kind`` is 'separable', 'low-rank', 'box' or 'general'.

    ``terms`` holds, per rank-1 term, one full-ndim factor per convolved axis
    (length 1 on every other convolved axis).
    """

    kind: str
    terms: tuple[tuple[np.ndarray, ...], ...] = ()
    value: complex = 0.0


GENERAL = Structure("general")


def _tolerance(kernel: np.ndarray) -> float:
    eps = np.finfo(kernel.dtype).eps
    return 8 * eps * float(np.abs(kernel).max()) * math.sqrt(kernel.size)


def factor_shape(ndim: int, axis: int, length: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = length
    return tuple(shape)


def _rank_one(core: np.ndarray, tol: float) -> list[np.ndarray] | None:
    """Factors ``f_i`` with ``core == outer(f_0, f_1, ...)``, or None (pivot test, O(size))."""
    pivot = np.unravel_index(np.argmax(np.abs(core)), core.shape)
    scale = core[pivot]
    if scale == 0:
        return None
    factors = []
    for axis in range(core.ndim):
        index = list(pivot)
        index[axis] = slice(None)
        factors.append(core[tuple(index)].astype(core.dtype, copy=True))
    factors[0] = factors[0] / scale ** (core.ndim - 1)
    rebuilt = factors[0]
    for f in factors[1:]:
        rebuilt = np.multiply.outer(rebuilt, f)
    if np.abs(rebuilt - core).max() > tol:
        return None
    return factors


def _svd_applies(shape: tuple[int, ...]) -> bool:
    """Whether a kernel core of ``shape`` gets the low-rank test (2-D, not too large)."""
    return len(shape) == 2 and math.prod(shape) <= SVD_MAX_AREA and min(shape) >= 4


def _low_rank(core: np.ndarray, tol: float) -> list[list[np.ndarray]] | None:
    # LAPACK has no long double, and an SVD in double misses long double's tolerance.
    if not _svd_applies(core.shape) or core.dtype.char in "gG":
        return None
    core64 = core.astype(np.result_type(core.dtype, np.float64))
    s = np.linalg.svd(core64, compute_uv=False)
    # Rank r misses by at least the residual's Frobenius norm over sqrt(size), so the
    # ranks below `first` cannot pass.  Trying every rank cost a data-like 256² kernel
    # (nothing to find) 1.7 s, a matrix product per rank; now it costs the singular values.
    tail = np.sqrt(np.cumsum((s**2)[::-1])[::-1])
    first = max(2, int(np.count_nonzero(tail > tol * math.sqrt(core.size))))
    if first > min(core.shape) // 2:
        return None
    u, s, vh = np.linalg.svd(core64, full_matrices=False)
    for rank in range(first, min(core.shape) // 2 + 1):
        rebuilt = (u[:, :rank] * s[:rank]) @ vh[:rank]
        if np.abs(rebuilt - core).max() <= tol:
            return [[(u[:, r] * s[r]).astype(core.dtype), vh[r].astype(core.dtype)]
                    for r in range(rank)]
    return None


def analyze(kernel: np.ndarray, axes: tuple[int, ...], *, low_rank: bool = True) -> Structure:
    """Find the cheapest exact structure of a kernel with no broadcast (batch) axes.

    ``low_rank=False`` skips the one costly test, the SVD of a 2-D kernel.
    """
    if any(n != 1 for ax, n in enumerate(kernel.shape) if ax not in axes):
        return GENERAL
    # A (1, 31, 31) kernel over a (z, y, x) stack is 2-D: its length-1 axis convolves nothing.
    axes = tuple(ax for ax in axes if kernel.shape[ax] > 1)
    if len(axes) < 2:
        return GENERAL  # already a 1-D pass
    # One value broadcast (every stride 0) is a box, known without reading its taps.
    if not any(kernel.strides) or np.all(kernel.reshape(-1) == kernel.flat[0]):
        value = kernel.flat[0]
        return Structure("box", value=complex(value) if kernel.dtype.kind == "c"
                         else float(value))
    core = kernel.reshape([kernel.shape[ax] for ax in axes])
    tol = _tolerance(core)
    factors = _rank_one(core, tol)
    if factors is not None:
        return Structure("separable", (_expand(factors, axes, kernel.ndim),))
    terms = _low_rank(core, tol) if low_rank else None
    if terms is not None:
        return Structure("low-rank", tuple(_expand(t, axes, kernel.ndim) for t in terms))
    return GENERAL


def may_be_low_rank(kernel: np.ndarray, axes: tuple[int, ...]) -> bool:
    """Whether :func:`analyze` could find a low-rank structure (the kernel is 2-D enough)."""
    return (all(n == 1 for ax, n in enumerate(kernel.shape) if ax not in axes)
            and _svd_applies(tuple(kernel.shape[ax] for ax in axes)))


def _expand(factors, axes, ndim) -> tuple[np.ndarray, ...]:
    return tuple(f.reshape(factor_shape(ndim, ax, f.size)) for f, ax in zip(factors, axes))


def pass_cvals(factors: tuple[np.ndarray, ...], cval: complex) -> list[complex]:
    """``cval`` for each pass: the constant region after the earlier passes."""
    out, scale = [], 1.0
    for f in factors:
        out.append(cval * scale)
        scale = scale * complex(f.sum()) if np.iscomplexobj(f) else scale * float(f.sum())
    return out
