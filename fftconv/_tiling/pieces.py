"""Where each block's region comes from: per axis, pieces of input chunks.

The boundary rule's index map (``np.pad``'s) points each piece of a block's
boundary-extended region into the input chunk it copies (a slice, reversed for
a reflection, a :class:`Repeat` for ``nearest``, an index array for ``wrap``),
or into nothing (the constant boundary).  No extended image is ever built.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import numpy as np

from fftconv._core.boundary import source_index


@dataclasses.dataclass(frozen=True)
class Repeat:
    """A selector that repeats one index ``count`` times (``nearest``'s edges), as a view.

    Not a tuple: dask would read a tuple inside a task's arguments as a task or a key.
    """

    index: int
    count: int


# One axis's share of a block's region: the input chunk it comes from (None: the constant
# boundary), the selector into that chunk (a slice, reversed for a reflection, a Repeat,
# or an index array), and the length it covers.
Piece = tuple[int | None, slice | Repeat | np.ndarray | None, int]


def chunk_spans(chunks: tuple[int, ...], start: int, stop: int) -> list[Piece]:
    """The chunks overlapping ``[start, stop)``, each with the part of it inside."""
    bounds = np.cumsum((0, *chunks))
    first = int(np.searchsorted(bounds, start, side="right")) - 1
    last = int(np.searchsorted(bounds, stop, side="left")) - 1
    spans = []
    for i in range(first, last + 1):
        lo, hi = max(start, int(bounds[i])), min(stop, int(bounds[i + 1]))
        spans.append((i, slice(lo - int(bounds[i]), hi - int(bounds[i])), hi - lo))
    return spans


def _runs(src: np.ndarray) -> list[tuple[int, int]]:
    """``src`` split into ``[start, stop)`` runs of one step, -1, 0 or 1 (the -1s on their own).

    An extension's sources run forwards (the image, ``wrap``), backwards (a
    reflection) or stand still (``nearest``); -1 marks the constant.
    """
    runs, p, n = [], 0, len(src)
    steps, outside = np.diff(src), src < 0
    while p < n:
        q = p + 1
        if q < n and outside[q] == outside[p] and abs(int(steps[p])) <= 1:
            ends = np.flatnonzero((steps[p:] != steps[p]) | (outside[p + 1:] != outside[p]))
            q = p + 1 + (int(ends[0]) if len(ends) else n - 1 - p)
        runs.append((p, q))
        p = q
    return runs


def axis_pieces(src: np.ndarray, chunks: tuple[int, ...]) -> list[Piece]:
    """The pieces of an extended axis whose positions copy the input positions ``src``.

    ``src`` is a range of :func:`fftconv._core.boundary.source_index` (-1: the
    constant).  Each of its runs becomes pieces split at the bounds of
    ``chunks``: views of them.  An extension wider than the image has many
    runs (a reflection turns at every edge); then each chunk gives one piece,
    an index array, rather than a piece per run.
    """
    bounds = np.cumsum((0, *chunks))
    runs = _runs(src)
    if len(runs) > 3:  # left edge, image, right edge: a wider extension turns more often
        runs = _chunk_runs(src, bounds)
    pieces: list[Piece] = []
    for a, b in runs:
        run = src[a:b]
        if run[0] < 0:
            pieces.append((None, None, b - a))
            continue
        which = np.searchsorted(bounds, run, side="right") - 1
        cuts = np.flatnonzero(np.diff(which)) + 1
        for part, chunk in zip(np.split(run, cuts), which[np.r_[0, cuts]]):
            pieces.append((int(chunk), _selector(part - int(bounds[chunk])), len(part)))
    return pieces


def _chunk_runs(src: np.ndarray, bounds: np.ndarray) -> list[tuple[int, int]]:
    """``src`` split where the chunk it reads changes (the constant's -1s are a chunk)."""
    which = np.where(src < 0, -1, np.searchsorted(bounds, src, side="right") - 1)
    edges = [0, *(np.flatnonzero(np.diff(which)) + 1).tolist(), len(src)]
    return list(itertools.pairwise(edges))


def _selector(local: np.ndarray) -> slice | Repeat | np.ndarray:
    """The selector of positions ``local`` of a chunk: a view if a slice or a Repeat will do."""
    n, lo = len(local), int(local[0])
    steps = np.unique(np.diff(local))
    if n == 1 or (len(steps) == 1 and steps[0] == 1):
        return slice(lo, lo + n)
    if len(steps) == 1 and steps[0] == -1:
        return slice(lo, lo - n if lo >= n else None, -1)
    if len(steps) == 1 and steps[0] == 0:
        return Repeat(lo, n)
    return local


def chunk_view(chunk: np.ndarray, cut: tuple) -> np.ndarray:
    """``chunk`` cut by the selectors ``cut``: a view, unless an index array takes (a copy).

    A Repeat broadcasts its one index.
    """
    basic = tuple(slice(c.index, c.index + 1) if isinstance(c, Repeat)
                  else slice(None) if isinstance(c, np.ndarray) else c for c in cut)
    piece = chunk[basic]
    for ax, c in enumerate(cut):
        if isinstance(c, np.ndarray):
            piece = np.take(piece, c, axis=ax)
    shape = tuple(c.count if isinstance(c, Repeat) else n for c, n in zip(cut, piece.shape))
    return piece if shape == piece.shape else np.broadcast_to(piece, shape)


def chunk_cut(chunk: np.ndarray, cut: tuple) -> np.ndarray:
    """A copy of a piece of ``chunk`` (a Repeat stays a view of the copy), so it can be released."""
    piece = chunk_view(chunk, cut)
    if not any(isinstance(c, Repeat) for c in cut):
        return np.array(piece) if np.may_share_memory(piece, chunk) else piece
    basic = tuple(slice(0, 1) if isinstance(c, Repeat) else slice(None) for c in cut)
    return np.broadcast_to(np.array(piece[basic]), piece.shape)


def constant_piece(shape: tuple[int, ...], value, dtype) -> np.ndarray:
    """A piece of the constant boundary: ``value`` broadcast, one element of memory."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), shape)


def block_plans(x, k, request, out_chunks, pads: dict) -> dict:
    """Per output block, per axis, the pieces (:data:`Piece`) of ``x`` its region reads.

    The region is the block's window of the full result plus the kernel's
    reach, in the coordinates of ``x`` extended by ``pads``; the extension is
    never built: its pieces point into the chunks it copies.
    """
    starts = [np.cumsum((0, *c[:-1])) for c in out_chunks]
    # The extension starts at the window's first read, a - (k - 1), unless the window
    # starts past the kernel's reach (custom windows): then that many samples in.
    skip = {ax: max(0, a - (k.shape[ax] - 1)) for ax, (a, _) in zip(request.axes,
                                                                     request.windows)}
    sources = {ax: source_index(x.shape[ax], pad, request.boundary) for ax, pad in pads.items()}

    def along(ax: int, i: int) -> list[Piece]:
        j0 = int(starts[ax][i])
        j1 = j0 + out_chunks[ax][i]
        if ax in sources:
            return axis_pieces(sources[ax][j0 + skip[ax]:j1 + skip[ax] + k.shape[ax] - 1],
                               x.chunks[ax])
        return chunk_spans(x.chunks[ax], *((0, 1) if x.shape[ax] == 1 else (j0, j1)))

    return plans_of(out_chunks, along)


def plans_of(out_chunks, along) -> dict:
    """Per block of ``out_chunks``, per axis, ``along(axis, block's index on it)``.

    The blocks of one row share that axis's pieces: each is computed once.
    """
    along = functools.cache(along)
    return {index: [along(ax, i) for ax, i in enumerate(index)]
            for index in np.ndindex(*[len(c) for c in out_chunks])}


def owners(plans: dict) -> dict:
    """Per input chunk, the output block that takes the largest part of it."""
    best: dict = {}
    for block, per_axis in plans.items():
        taken: dict = {}
        for combo in itertools.product(*per_axis):
            if all(chunk is not None for chunk, _, _ in combo):
                chunk = tuple(c for c, _, _ in combo)
                taken[chunk] = taken.get(chunk, 0) + math.prod(n for _, _, n in combo)
        for chunk, size in taken.items():
            if size > best.get(chunk, (-1, None))[0]:
                best[chunk] = (size, block)
    return {chunk: block for chunk, (_, block) in best.items()}
