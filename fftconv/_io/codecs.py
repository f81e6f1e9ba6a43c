"""The compressions an output can be written with, by name.

zarr (v3 and v2): ``blosc-zstd`` (the default: level 1 with byte shuffle,
fastest for smooth convolved images), ``blosc-lz4``, ``zstd``, ``gzip``,
``none``.  TIFF: ``none`` (the default: memory-mapped, written in place by
every task), ``deflate``, ``zstd``, ``lzw`` (tiles encoded by tifffile, a row
of tiles at a time).
"""

from __future__ import annotations

ZARR_CODECS = ("blosc-zstd", "blosc-lz4", "zstd", "gzip", "none")
TIFF_CODECS = ("none", "deflate", "zstd", "lzw")


def zarr_codec(name: str | None = None, zarr_format: int = 3):
    """The ``compressors=`` of a zarr array of ``zarr_format`` for the codec ``name``.

    Examples
    --------
    >>> zarr_codec("none"), type(zarr_codec("gzip")).__name__
    (None, 'GzipCodec')
    """
    name = name or "blosc-zstd"
    if name not in ZARR_CODECS:
        raise ValueError(f"compression={name!r} is not one of {', '.join(ZARR_CODECS)} for "
                         "a zarr output")
    if name == "none":
        return None
    if zarr_format == 2:
        import numcodecs

        if name.startswith("blosc"):
            return numcodecs.Blosc(cname=name.split("-")[1], clevel=1,
                                   shuffle=numcodecs.Blosc.SHUFFLE)
        return numcodecs.Zstd(level=1) if name == "zstd" else numcodecs.GZip(level=1)
    import zarr

    if name.startswith("blosc"):
        return zarr.codecs.BloscCodec(cname=name.split("-")[1], clevel=1, shuffle="shuffle")
    return zarr.codecs.ZstdCodec(level=1) if name == "zstd" else zarr.codecs.GzipCodec(level=1)


def tiff_codec(name: str | None) -> str | None:
    """tifffile's ``compression=`` for ``name`` (None: uncompressed)."""
    name = name or "none"
    if name not in TIFF_CODECS:
        raise ValueError(f"compression={name!r} is not one of {', '.join(TIFF_CODECS)} for "
                         "a TIFF output")
    return None if name == "none" else name
