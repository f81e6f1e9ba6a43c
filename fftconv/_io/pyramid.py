"""The coarser levels of an OME-Zarr output: their factors, and each written from the last.

A viewer shows a large image zoomed out from its coarser levels (NGFF
``multiscales``: one dataset per level, the first the full resolution).  A
level here is the mean of ``f`` pixels of the level before along each axis,
``f`` the ratio of their scales, a whole number; a coarse pixel lies at the
centre of the pixels it averages, so its translation moves by ``(f - 1) / 2``
of the finer pixel.  The levels are computed from the full resolution's blocks
in the pass that writes them, never read back and never whole in memory.
"""

from __future__ import annotations

from collections.abc import Sequence


def integer_ratio(finer: Sequence[float], coarser: Sequence[float]) -> list[int] | None:
    """``coarser / finer`` per axis when each is a whole number >= 1, one > 1; else None."""
    if len(finer) != len(coarser):
        return None
    factors = []
    for a, b in zip(finer, coarser):
        if not (isinstance(a, int | float) and isinstance(b, int | float)) or a <= 0 or b <= 0:
            return None
        ratio = b / a
        whole = round(ratio)
        if whole < 1 or abs(ratio - whole) > 1e-6 * ratio:
            return None
        factors.append(whole)
    return factors if any(f > 1 for f in factors) else None


def shape_ratio(finer: Sequence[int], coarser: Sequence[int]) -> list[int] | None:
    """The whole factors by which a level of shape ``coarser`` samples ``finer`` (a TIFF's
    pyramid states shapes, not scales): per axis ``f`` with ``coarser`` =
    ``finer / f`` rounded down or up, one ``f`` > 1; else None.

    Examples
    --------
    >>> shape_ratio((2, 101, 77), (2, 51, 38)), shape_ratio((101,), (40,))
    ([1, 2, 2], None)
    """
    if len(finer) != len(coarser) or min(coarser, default=0) < 1:
        return None
    factors = [max(1, round(n / m)) for n, m in zip(finer, coarser)]
    if any(m not in (n // f, -(-n // f)) for n, m, f in zip(finer, coarser, factors)):
        return None
    return factors if any(f > 1 for f in factors) else None


def inline_scale(dataset: dict, ndim: int) -> list[float] | None:
    """A dataset's inline ``scale`` vector, or None."""
    for transform in dataset.get("coordinateTransformations") or ():
        if transform.get("type") == "scale":
            scale = transform.get("scale")
            return list(scale) if isinstance(scale, list) and len(scale) == ndim else None
    return None


def whole_ratios(first: Sequence[float], datasets: Sequence[dict], ndim: int) -> list[list[int]]:
    """Per dataset, the whole factors by which it is coarser than the one before.

    The one before the first has scale ``first``.  The list ends before the
    first dataset whose inline scale is not such a multiple.
    """
    ratios, finer = [], list(first)
    for dataset in datasets:
        scale = inline_scale(dataset, ndim)
        ratio = integer_ratio(finer, scale) if scale is not None else None
        if ratio is None:
            break
        ratios.append(ratio)
        finer = scale
    return ratios


def level_factors(datasets: Sequence[dict], ndim: int) -> list[list[int]]:
    """Per level after the first, the whole factors by which it is coarser than the last.

    Raises ValueError naming the level whose scale is not such a multiple.
    """
    unit = [1.0] * ndim
    factors = whole_ratios(inline_scale(datasets[0], ndim) or unit, datasets[1:], ndim)
    if len(factors) < len(datasets) - 1:
        finer, dataset = datasets[len(factors)], datasets[len(factors) + 1]
        raise ValueError(f"ome= level {dataset.get('path')!r}: its scale "
                         f"{inline_scale(dataset, ndim)} is not a whole multiple of the level "
                         f"before's {inline_scale(finer, ndim) or unit}, coarser along some "
                         "axis")
    return factors


def first_empty(shape: Sequence[int], ratios: Sequence[Sequence[int]]
                ) -> tuple[int, list[int]] | None:
    """The first coarser level of a ``shape`` image, by ``ratios``, with no pixel on some axis.

    Its index in ``ratios`` and the size of its pixel in full-resolution pixels
    per axis; None when every level has pixels.
    """
    total = [1] * len(shape)
    for index, ratio in enumerate(ratios):
        total = [t * r for t, r in zip(total, ratio)]
        if any(n < t for n, t in zip(shape, total)):
            return index, total
    return None


def coarser_level(finer, factors: Sequence[int], chunks: Sequence[int]):
    """The dask array of ``finer`` averaged over ``factors`` pixels, in blocks of ``chunks``.

    A partial edge is dropped, as a coarse pixel needs all of its pixels.  Each
    block averages pixels of its own (``finer`` is rechunked to multiples of
    ``factors``); the dtype stays ``finer``'s.
    """
    trimmed = finer[tuple(slice(0, n - n % f) for n, f in zip(finer.shape, factors))]
    aligned = trimmed.rechunk(tuple(max(f, c - c % f) for c, f in
                                    zip(trimmed.chunksize, factors)))
    coarse = aligned.map_blocks(
        _mean_pool, factors, dtype=finer.dtype,
        chunks=tuple(tuple(c // f for c in cs) for cs, f in zip(aligned.chunks, factors)))
    return coarse.rechunk(tuple(min(c, n) for c, n in zip(chunks, coarse.shape)))


def _mean_pool(block, factors: Sequence[int]):
    pooled = block.reshape([n for size, f in zip(block.shape, factors) for n in (size // f, f)])
    return pooled.mean(axis=tuple(range(1, 2 * block.ndim, 2)), dtype=block.dtype)
