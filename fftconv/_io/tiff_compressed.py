"""A compressed TIFF written tile by tile, a row of tiles computed at a time.

A compressed TIFF cannot be memory-mapped and written in place by every task:
its tiles are encoded (by tifffile, deflate, zstd or LZW) and appended in
order.  Each row of tiles is one dask computation (its blocks in parallel), so
memory holds one row of tiles of the image, whatever its size; coarser levels
of a pyramid follow as reduced images (SubIFDs), as the uncompressed layout
has them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# TIFF tiles are multiples of 16 pixels on a side; 512² float32 is 1 MiB to encode.
TILE = 512


def _tile(shape: tuple[int, ...], samples: bool) -> tuple[int, int]:
    plane = shape[-3:-1] if samples else shape[-2:]
    return tuple(min(TILE, 16 * math.ceil(n / 16)) for n in plane)  # type: ignore[return-value]


def _tiles(level, tile: tuple[int, int], samples: bool, compute: dict) -> Iterator[np.ndarray]:
    """Every tile of ``level`` in TIFF order (plane by plane, row by row), zero-padded."""
    import dask

    lead = level.shape[:-3] if samples else level.shape[:-2]
    rows_axis = level.ndim - (3 if samples else 2)
    height, width = level.shape[rows_axis], level.shape[rows_axis + 1]
    ty, tx = tile
    for plane in np.ndindex(*lead):
        for top in range(0, height, ty):
            (row,) = dask.compute(level[plane][top: top + ty], **compute)
            for left in range(0, width, tx):
                part = row[:, left: left + tx]
                if part.shape[:2] != (ty, tx):
                    padded = np.zeros((ty, tx, *part.shape[2:]), dtype=part.dtype)
                    padded[: part.shape[0], : part.shape[1]] = part
                    part = padded
                yield np.ascontiguousarray(part)


def write_compressed_tiff(path: Path, levels: list, layout: dict, compression: str,
                          compute: dict) -> None:
    """Write ``levels`` (dask arrays, the first full resolution) to a new TIFF at ``path``."""
    import tifffile

    layout = dict(layout)
    ome = bool(layout.pop("ome", False))
    samples = layout.get("photometric") == "rgb"
    with tifffile.TiffWriter(path, bigtiff=True, ome=ome) as tif:
        for i, level in enumerate(levels):
            place = ({"subifds": len(levels) - 1, **layout} if len(levels) > 1 else layout) \
                if i == 0 else {"subfiletype": 1, "photometric": layout["photometric"],
                                "metadata": None}
            tile = _tile(level.shape, samples)
            tif.write(data=_tiles(level, tile, samples, compute), shape=level.shape,
                      dtype=level.dtype, tile=tile, compression=compression, **place)
