"""A block's pieces (chunk cuts and halo strips, as a nested list) joined into one array."""

from __future__ import annotations

import numpy as np


def leaves(parts, index=()):
    if isinstance(parts, list):
        for i, child in enumerate(parts):
            yield from leaves(child, (*index, i))
    else:
        yield index, parts


def join_starts(parts) -> list[np.ndarray]:
    """Per axis, where each piece of the nested list ``parts`` starts (as np.block joins them)."""
    by_index = dict(leaves(parts))
    ndim = len(next(iter(by_index)))
    starts = []
    for d in range(ndim):
        count = 1 + max(index[d] for index in by_index)
        sizes = [by_index[tuple(i if e == d else 0 for e in range(ndim))].shape[d]
                 for i in range(count)]
        starts.append(np.cumsum((0, *sizes)))
    return starts


def join_into(parts, starts, out: np.ndarray, axis: int = 0, offset: int = 0) -> np.ndarray:
    """``np.block(parts)`` written into the corner of ``out``, zeros around it.

    ``out`` may hold only the rows ``offset`` to ``offset + out.shape[axis]``
    along ``axis``: then only the pieces' share of those rows is written.
    """
    stop = offset + out.shape[axis]
    for d, s in enumerate(starts):  # zero only what the pieces leave uncovered
        end = int(s[-1]) - (offset if d == axis else 0)
        out[(slice(None),) * d + (slice(max(end, 0), None),)] = 0
    for index, leaf in leaves(parts):
        source, target = [], []
        for d, (s, i, n) in enumerate(zip(starts, index, leaf.shape)):
            a = int(s[i])
            lo, hi = (max(a, offset), min(a + n, stop)) if d == axis else (a, a + n)
            shift = offset if d == axis else 0
            source.append(slice(lo - a, hi - a))
            target.append(slice(lo - shift, hi - shift))
        if all(t.stop > t.start for t in target):
            out[tuple(target)] = leaf[tuple(source)]
    return out
