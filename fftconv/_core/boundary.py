"""Boundary extension (SPEC §1.1 step 1) and its adjoint, the fold.

The names are scipy.ndimage's; the meaning is exactly ``np.pad``'s, so
extensions longer than the image repeat the rule as ``np.pad`` does.
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
    return np.pad(x, width, mode=NP_PAD_MODE[boundary])


def source_index(n: int, pad: tuple[int, int], boundary: str) -> np.ndarray:
    """For each position of the extended axis, the image index it copies (-1: the constant)."""
    if boundary == "constant":
        return np.pad(np.arange(n), pad, mode="constant", constant_values=-1)
    return np.pad(np.arange(n), pad, mode=NP_PAD_MODE[boundary])


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
