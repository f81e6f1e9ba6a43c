"""Boundary extension (SPEC §1.1 step 1) and its adjoint, the fold.

The names are scipy.ndimage's; the meaning is ``np.pad``'s.  An extension
longer than the image repeats the rule periodically: ``wrap``, ``reflect`` and
``mirror`` repeat a period of ``n``, ``2n`` and ``2n - 2`` samples, as NumPy 2's
``np.pad`` does.  NumPy 1's ``np.pad`` breaks that period when both sides are
extended by more than the image and by different amounts (``[1, 2]`` by 45 and
1, ``symmetric``: ``1 1 2 2 1 1 2 2 2 2 1 1 ...``), so such extensions are made
from the index map here, and results do not depend on the NumPy version.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NP_PAD_MODE = {
    "constant": "constant",
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
}


def full_pad_width(ndim: int, axes: Sequence[int],
                   pads: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``np.pad``'s ``pad_width``: ``pads[i]`` on ``axes[i]``, nothing elsewhere."""
    width = [(0, 0)] * ndim
    for ax, pad in zip(axes, pads):
        width[ax] = pad
    return width


def extend(x: np.ndarray, axes: Sequence[int], pads: Sequence[tuple[int, int]],
           boundary: str, cval: complex = 0.0) -> np.ndarray:
    """Extend ``x`` by ``pads[i]`` (left, right) along ``axes[i]`` with the boundary rule."""
    width = full_pad_width(x.ndim, axes, pads)
    if not any(any(p) for p in width):
        return x
    if boundary == "constant":
        return np.pad(x, width, mode="constant", constant_values=cval)
    if all((left < n and right < n) or n == 0 for (left, right), n in zip(width, x.shape)):
        return np.pad(x, width, mode=NP_PAD_MODE[boundary])  # one reflection: all agree
    for ax, pad in zip(axes, pads):
        x = np.take(x, source_index(x.shape[ax], pad, boundary), axis=ax)
    return x


def source_index(n: int, pad: tuple[int, int], boundary: str) -> np.ndarray:
    """For each position of the extended axis, the image index it copies (-1: the constant).

    Examples
    --------
    >>> source_index(2, (5, 3), "reflect")
    array([0, 0, 1, 1, 0, 0, 1, 1, 0, 0])
    >>> source_index(3, (4, 4), "mirror"), source_index(3, (2, 2), "constant")
    (array([0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]), array([-1, -1,  0,  1,  2, -1, -1]))
    """
    i = np.arange(-pad[0], n + pad[1])
    if boundary == "constant":
        return np.where((i >= 0) & (i < n), i, -1)
    if boundary == "nearest":
        return np.clip(i, 0, n - 1)
    if boundary == "wrap":
        return i % n
    period = 2 * n if boundary == "reflect" else max(2 * n - 2, 1)
    m = i % period
    return np.where(m < n, m, period - m - (boundary == "reflect"))


def fold(g: np.ndarray, axes: Sequence[int], pads: Sequence[tuple[int, int]],
         boundary: str) -> np.ndarray:
    """Adjoint of :func:`extend` (for ``cval=0``): add each extended value back onto its source.

    ``<extend(x), g> == <x, fold(g)>`` for every ``x`` and ``g``.
    """
    out = g
    for ax, pad in zip(axes, pads):
        if not any(pad):
            continue
        n = out.shape[ax] - pad[0] - pad[1]
        src = source_index(n, pad, boundary)
        keep = src >= 0
        moved = np.moveaxis(out, ax, 0)
        acc = np.zeros((n, *moved.shape[1:]), dtype=out.dtype)
        np.add.at(acc, src[keep], moved[keep])
        out = np.moveaxis(acc, 0, ax)
    return out
