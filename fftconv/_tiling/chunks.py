"""Chunk arithmetic of the halo tiling: output chunks, merged blocks, tile lengths."""

from __future__ import annotations

import math

import dask.array as da


def output_chunks(in_chunks: tuple[int, ...], length: int) -> tuple[int, ...]:
    """Output chunks that follow the input's as far as the output's length allows."""
    out, total = [], 0
    for c in in_chunks:
        if total + c >= length:
            break
        out.append(c)
        total += c
    out.append(length - total)
    return tuple(c for c in out if c > 0)


# Blocks are at least this many pixels (over the convolved axes), merging small chunks:
# each block costs its tasks, its halo and its neighbours' second reads.  A 4096² zarr
# image in 64² chunks ⊛ 101², reflect: 33.5 s a block per chunk, 13.2 s in 1024² blocks
# (the rest is zarr's); estimate_kernel's passes at 8192² in 256² chunks: 8.6-11.5 s,
# against 5.5-8.3 s.
BLOCK_ELEMENTS = 1 << 20


# Blocks grow along an axis whose halo is more than half of them, up to this many
# pixels (64 MiB of float32).  A (64, 1024, 1024) float32 zarr stack stored a plane a
# chunk ⊛ gaussian:sigma=1,2,2 (9 × 17 × 17 taps), on the command line: a block a plane
# (each reading 9) took 3.5-3.6 s at 752-756 MiB, blocks of 16 planes 2.0-2.1 s at
# 767-779 MiB.  (Past a quarter, a 16384² image in 2048² chunks ⊛ a 1001² disk ran in
# 4096² blocks: 6.0 s at 891 MiB against 6.8 s at 800 MiB.)
MOST_BLOCK_ELEMENTS = 1 << 24


def merged(chunks: tuple[tuple[int, ...], ...], axes=None,
           elements: int | None = None, halos: dict[int, int] | None = None,
           ) -> tuple[tuple[int, ...], ...]:
    """``chunks`` with neighbours merged along ``axes`` (default all) to about ``elements``.

    Blocks reach ``elements`` (default :data:`BLOCK_ELEMENTS`) over ``axes``
    (see :func:`block_lengths`), and with ``halos`` (each axis's kernel length
    less one) grow where the halo is long against them (:func:`halo_lengths`);
    no chunk is split.

    Examples
    --------
    >>> merged(((256,) * 9 + (100,), (300, 300)), elements=1 << 20)
    ((1024, 1380), (600,))
    >>> merged(((256,) * 9 + (100,), (3, 3)), axes=(0,), elements=1 << 10)
    ((1024, 1380), (3, 3))

    A stack of 2048² planes in chunks of 16 already holds that many: its
    planes are not merged into blocks of 112 (1.8 GiB of float32 each).

    >>> merged(((16,) * 12 + (8,), (2048,) * 2, (2048,) * 2), elements=1 << 20)[0][:2]
    (16, 16)
    """
    axes = range(len(chunks)) if axes is None else axes
    elements = BLOCK_ELEMENTS if elements is None else elements
    sizes = {ax: max(chunks[ax]) for ax in axes}
    lengths = block_lengths(sizes, elements)
    if halos:
        lengths = halo_lengths(lengths, sizes, halos, {ax: sum(chunks[ax]) for ax in axes})
    out = []
    for ax, axis in enumerate(chunks):
        if ax not in axes:
            out.append(axis)
            continue
        length = lengths[ax]
        groups, total = [], 0
        for c in axis:
            total += c
            if total >= length:
                groups.append(total)
                total = 0
        if total and groups and total < length // 2:
            groups[-1] += total  # no sliver of a block at the end
        elif total:
            groups.append(total)
        out.append(tuple(groups))
    return tuple(out)


def block_lengths(sizes: dict[int, int], elements: int) -> dict[int, int]:
    """Per axis, the length merged blocks reach: ``elements`` over all, no chunk split.

    ``sizes`` is each axis's chunk length.  The shorter axes share what the
    longer ones leave equally: an axis whose chunks are already longer than its
    share keeps them (its length is that share, which they exceed), and the
    others reach ``elements`` with it, not alone.

    Examples
    --------
    >>> block_lengths({0: 64, 1: 64}, 1 << 20)
    {0: 1024, 1: 1024}

    Planes of 256² in chunks of one: 16 planes make a block (the planes' axes
    get shares their chunks already exceed).

    >>> block_lengths({0: 1, 1: 256, 2: 256}, 1 << 20)
    {1: 102, 2: 64, 0: 16}
    """
    remaining = sorted(sizes, key=sizes.__getitem__, reverse=True)
    lengths: dict[int, int] = {}
    budget = float(elements)
    while remaining:
        share = math.ceil(budget ** (1 / len(remaining)) - 1e-9)
        if sizes[remaining[0]] < share:  # the longest is short of its share: all are
            return lengths | dict.fromkeys(remaining, share)
        ax = remaining.pop(0)
        lengths[ax] = share
        budget /= sizes[ax]
    return lengths


def halo_lengths(lengths: dict[int, int], sizes: dict[int, int], halos: dict[int, int],
                 extents: dict[int, int]) -> dict[int, int]:
    """``lengths`` (from :func:`block_lengths`) doubled along axes whose halo is long.

    A block reads its halo on top of itself: along an axis where the halo is
    over half the block, the block is doubled (the axis with the longest halo
    against its block first), while the block stays within
    :data:`MOST_BLOCK_ELEMENTS` and the axis's ``extents``.

    Examples
    --------
    A stack a plane a chunk, with a kernel 9 planes deep: 16 planes a block.

    >>> halo_lengths({0: 1, 1: 1024, 2: 1024}, {0: 1, 1: 1024, 2: 1024}, {0: 8, 1: 16, 2: 16},
    ...              {0: 64, 1: 1024, 2: 1024})
    {0: 16, 1: 1024, 2: 1024}
    """
    lengths = dict(lengths)

    def block(ax: int) -> int:  # chunks longer than the length are whole blocks
        return max(lengths[ax], sizes[ax])

    while True:
        grow = [ax for ax in lengths if 2 * halos.get(ax, 0) > block(ax) < extents[ax]]
        if not grow:
            return lengths
        ax = max(grow, key=lambda a: halos[a] / block(a))
        longer = min(2 * block(ax), extents[ax])
        if longer * math.prod(block(a) for a in lengths if a != ax) > MOST_BLOCK_ELEMENTS:
            return lengths
        lengths[ax] = longer


def fast_tiles(chunks: tuple[int, ...], k: int, fast_len) -> tuple[int, ...]:
    """``tile="auto"``: chunk lengths near the current ones whose tile + halo is a fast length."""
    n = sum(chunks)
    target = max(chunks)
    best = fast_len(target + k - 1) - (k - 1)
    if best <= 0:
        best = target
    full, rest = divmod(n, best)
    return (best,) * full + ((rest,) if rest else ())


def check_known_chunks(array: da.Array, name: str = "image") -> None:
    if any(math.isnan(c) for chunks in array.chunks for c in chunks):
        raise ValueError(f"{name} has unknown chunk sizes (as after boolean indexing); the "
                         f"halo tiling needs them: call {name}.compute_chunk_sizes() first")


def whole_short_axes(x: da.Array, kernel_shape, axes) -> da.Array:
    """``x`` in one chunk along each of ``axes`` shorter than the kernel.

    A block's region along such an axis is longer than the axis, and an
    extension wider than the image turns at each of its edges: in many chunks,
    that made a piece per chunk per turn (61787 tasks for a 4 × 6 image in 2²
    chunks ⊛ 101², ``full``, against 31 in one chunk).
    """
    short = {ax: -1 for ax in axes if x.shape[ax] < kernel_shape[ax] and len(x.chunks[ax]) > 1}
    return x.rechunk(short) if short else x
