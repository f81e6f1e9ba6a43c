"""Whole zarr chunks decoded straight into their arrays, for the Dask path's reads.

zarr reads a chunk by decoding it into a buffer of its own and copying that
into the array it returns; at 2048² float32 (zstd) the copy and its page
faults take a third of the read (30-37 ms against 20-28 ms), and the Dask
path reads every chunk twice (see :func:`fftconv._dask._reread`).  A chunk
whose layout is plain — stored C order in native byte order, one of zarr's
own compressors or none, no sharding, transposition or checksum codec — is
read here with the store's own ``get`` and decoded by numcodecs into the
array returned.  Anything else (and any chunk a dask task reads only in part)
keeps zarr's read.  Everything is decided from the array's metadata when the
graph is built; nothing is read until a task runs.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one zarr array's chunks are stored: enough to decode one without zarr."""

    chunk_shape: tuple[int, ...]
    dtype: np.dtype
    decoder: Any  # a numcodecs codec, or None for raw bytes
    fill_value: Any


def layout(array) -> Layout | None:
    """``array``'s :class:`Layout` when its chunks can be decoded directly, else None.

    Examples
    --------
    >>> import numcodecs, zarr
    >>> plain = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 6), chunks=(2, 3),
    ...                           dtype="float32", compressors=zarr.codecs.ZstdCodec())
    >>> layout(plain).chunk_shape, layout(plain).decoder
    ((2, 3), Zstd(level=0))
    >>> sharded = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 6), chunks=(2, 3),
    ...                             shards=(4, 6), dtype="float32")
    >>> layout(sharded) is None
    True
    """
    try:
        import zarr
    except ImportError:
        return None
    if not isinstance(array, zarr.Array) or not _readable(array):
        return None
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "biufc" or not dtype.isnative or array.fill_value is None:
        return None
    found = _v3_decoder(array) if array.metadata.zarr_format == 3 else _v2_decoder(array)
    if found is None:
        return None
    return Layout(tuple(array.chunks), dtype, found[0], array.fill_value)


def _readable(array) -> bool:
    """zarr's pieces that a direct read uses are where this module expects them."""
    try:
        from zarr.core.buffer import default_buffer_prototype  # noqa: F401
        from zarr.core.sync import sync  # noqa: F401
    except ImportError:
        return False
    return (hasattr(array.metadata, "encode_chunk_key") and hasattr(array.store, "get")
            and isinstance(array.path, str))


def _v3_decoder(array) -> tuple[Any] | None:
    """(the numcodecs decoder,) for ``BytesCodec`` + at most one zarr compressor, else None."""
    import numcodecs
    from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, ZstdCodec

    first, *rest = array.metadata.codecs
    if type(first) is not BytesCodec or len(rest) > 1:
        return None
    endian = getattr(first.endian, "value", first.endian)
    if endian not in (None, sys.byteorder):
        return None
    if not rest:
        return (None,)
    known = {ZstdCodec: numcodecs.Zstd, BloscCodec: numcodecs.Blosc, GzipCodec: numcodecs.GZip}
    make = known.get(type(rest[0]))
    return None if make is None else (make(),)


def _v2_decoder(array) -> tuple[Any] | None:
    """(the compressor,) of a zarr v2 array without filters in C order, else None."""
    import numcodecs

    meta = array.metadata
    if meta.filters or meta.order != "C":
        return None
    if meta.compressor is None:
        return (None,)
    known = (numcodecs.Zstd, numcodecs.Blosc, numcodecs.GZip, numcodecs.Zlib)
    return (meta.compressor,) if type(meta.compressor) in known else None


def read_chunk(array, stored: Layout, coords: tuple[int, ...],
               shape: tuple[int, ...]) -> np.ndarray:
    """Chunk ``coords`` of ``array``, ``shape`` its extent inside the array (edge chunks).

    A chunk missing from the store is the fill value, as zarr reads it.

    Examples
    --------
    >>> import numpy as np, zarr
    >>> z = zarr.create_array(zarr.storage.MemoryStore(), shape=(3, 5), chunks=(2, 3),
    ...                       dtype="int16", fill_value=7)
    >>> z[:2, :3] = np.arange(6).reshape(2, 3)
    >>> read_chunk(z, layout(z), (0, 0), (2, 3))
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int16)
    >>> read_chunk(z, layout(z), (1, 1), (1, 2))
    array([[7, 7]], dtype=int16)
    """
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    key = array.metadata.encode_chunk_key(coords)
    key = f"{array.path}/{key}" if array.path else key
    found = sync(array.store.get(key, prototype=default_buffer_prototype()))
    if found is None:
        return np.full(shape, stored.fill_value, stored.dtype)
    out = np.empty(stored.chunk_shape, stored.dtype)
    data = found.as_numpy_array()
    if stored.decoder is not None:
        stored.decoder.decode(data, out)
    elif data.nbytes == out.nbytes:
        out.reshape(-1).view(np.uint8)[:] = data.reshape(-1).view(np.uint8)
    else:
        raise ValueError(f"zarr chunk {key!r} holds {data.nbytes} bytes; "
                         f"a {stored.chunk_shape} {stored.dtype} chunk has {out.nbytes}")
    if shape == stored.chunk_shape:
        return out
    return out[tuple(slice(0, n) for n in shape)].copy()  # an edge chunk: zarr's exact extent
