"""Whole zarr chunks read and written without zarr's copies, for the Dask path.

zarr reads a chunk by decoding it into a buffer of its own and copying that
into the array it returns; at 2048² float32 (zstd) the copy and its page
faults take a third of the read (30-37 ms against 20-28 ms), and the Dask
path reads every chunk twice (see :func:`fftconv._tiling.graph.reread`).  Writing
one, it copies the block into a chunk buffer before encoding (66 ms against
49 ms for blosc-zstd and the file write).  A chunk whose layout is plain —
stored C order in native byte order, one of zarr's own compressors or none,
no sharding, transposition or checksum codec — is read here with the store's
own ``get`` and decoded by numcodecs into the array returned, and written by
encoding the block itself with the codec zarr would use and ``set`` in the
store: the same bytes under the same key.  Anything else (and any chunk a
task reads or writes only in part) goes through zarr.  Everything is decided
from the array's metadata when the graph is built; nothing is read until a
task runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fftconv._io.formats import InputError


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one zarr array's chunks are stored: enough to decode or encode one without zarr."""

    chunk_shape: tuple[int, ...]
    dtype: np.dtype
    codec: Any  # the numcodecs codec zarr encodes and decodes with, or None: raw bytes
    fill_value: Any
    encodes_bytes: bool  # zarr v3 encodes a chunk's bytes; v2, the array itself


def layout(array) -> Layout | None:
    """``array``'s :class:`Layout` when its chunks can be read and written directly, else None.

    Examples
    --------
    >>> import numcodecs, zarr
    >>> plain = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 6), chunks=(2, 3),
    ...                           dtype="float32", compressors=zarr.codecs.ZstdCodec())
    >>> layout(plain).chunk_shape, layout(plain).codec
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
    found = _v3_codec(array) if array.metadata.zarr_format == 3 else _v2_codec(array)
    if found is None:
        return None
    return Layout(tuple(array.chunks), dtype, found[0], array.fill_value,
                  array.metadata.zarr_format == 3)


def _readable(array) -> bool:
    """zarr's pieces that direct reads and writes use are where this module expects them."""
    try:
        from zarr.core.buffer import default_buffer_prototype  # noqa: F401
        from zarr.core.sync import sync  # noqa: F401
    except ImportError:
        return False
    return (hasattr(array.metadata, "encode_chunk_key") and hasattr(array.store, "get")
            and isinstance(array.path, str))


def _v3_codec(array) -> tuple[Any] | None:
    """(the numcodecs codec,) for ``BytesCodec`` + at most one zarr compressor, else None.

    Each is configured as zarr configures its own (``zarr.codecs.blosc``...),
    so that a chunk written here has the bytes zarr would write.
    """
    import numcodecs
    from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, ZstdCodec

    first, *rest = array.metadata.codecs
    if type(first) is not BytesCodec or len(rest) > 1:
        return None
    endian = _value(first.endian)
    if endian not in (None, sys.byteorder):
        return None
    if not rest:
        return (None,)
    codec = rest[0]
    if type(codec) is ZstdCodec:
        return (numcodecs.Zstd(level=codec.level, checksum=codec.checksum),)
    if type(codec) is GzipCodec:
        return (numcodecs.GZip(level=codec.level),)
    if type(codec) is BloscCodec:
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[_value(codec.shuffle)]
        try:  # numcodecs >= 0.16 takes the type size zarr gives it; older ones do not
            return (numcodecs.Blosc(cname=_value(codec.cname), clevel=codec.clevel,
                                    shuffle=shuffle, blocksize=codec.blocksize,
                                    typesize=codec.typesize),)
        except TypeError:
            return None
    return None


def _value(option):
    """An enum option's value (zarr's Blosc settings are enums)."""
    return getattr(option, "value", option)


def _v2_codec(array) -> tuple[Any] | None:
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

    key = _key(array, coords)
    found = sync(array.store.get(key, prototype=default_buffer_prototype()))
    if found is None:
        return np.full(shape, stored.fill_value, stored.dtype)
    out = np.empty(stored.chunk_shape, stored.dtype)
    try:
        _decode_into(stored.codec, found.as_numpy_array(), out, key)
    except Exception as err:  # a codec's own error (blosc, zstd): the chunk is damaged
        raise InputError(f"{_where(array)}: chunk {key!r} could not be decoded, the file is "
                         f"damaged ({type(err).__name__}: {err})") from err
    if shape == stored.chunk_shape:
        return out
    return out[tuple(slice(0, n) for n in shape)].copy()  # an edge chunk: zarr's exact extent


def _where(array) -> str:
    """The zarr array's location, for messages: its store's root and its path in it."""
    root = getattr(array.store, "root", None)
    path = str(root) if root is not None else str(array.store)
    return f"{path}/{array.path}".rstrip("/") if array.path else path


def _decode_into(codec, data: np.ndarray, out: np.ndarray, key: str) -> None:
    """``data`` (a chunk's stored bytes) decoded into ``out``, or ValueError if it is not
    ``out``'s size, as zarr raises (numcodecs would fill part of ``out``, silently)."""
    size = data.nbytes if codec is None else decoded_size(codec, data)
    if codec is not None and size is None:  # unstated: decoded, then copied, as zarr does
        data, codec = np.frombuffer(codec.decode(data), np.uint8), None
        size = data.nbytes
    if size != out.nbytes:
        raise ValueError(f"zarr chunk {key!r} holds {size} bytes; a {out.shape} {out.dtype} "
                         f"chunk has {out.nbytes}")
    if codec is None:
        out.reshape(-1).view(np.uint8)[:] = data.reshape(-1).view(np.uint8)
    else:
        codec.decode(data, out)


def decoded_size(codec, data: np.ndarray) -> int | None:
    """The decoded size in bytes that a zstd, blosc or gzip chunk's own header states.

    Read from the formats' published layouts: zstd's frame header (RFC 8878
    §3.1.1.1), blosc's 16-byte header (``nbytes`` at offset 4) and gzip's
    trailer (ISIZE, RFC 1952).  None for other codecs and for a zstd frame
    that does not state it.

    Examples
    --------
    >>> import numcodecs, numpy as np
    >>> values = np.arange(1000, dtype=np.float32)
    >>> codecs = (numcodecs.Zstd(), numcodecs.Blosc(), numcodecs.GZip(), numcodecs.Zlib())
    >>> [decoded_size(c, np.frombuffer(c.encode(values), np.uint8)) for c in codecs]
    [4000, 4000, 4000, None]
    """
    import numcodecs

    data = data.reshape(-1).view(np.uint8)
    if type(codec) is numcodecs.Blosc:
        return int.from_bytes(bytes(data[4:8]), "little")
    if type(codec) is numcodecs.GZip:
        return int.from_bytes(bytes(data[-4:]), "little")
    if type(codec) is not numcodecs.Zstd:
        return None
    descriptor = int(data[4])
    single, flag = descriptor >> 5 & 1, descriptor >> 6
    start = 5 + (not single) + (0, 1, 2, 4)[descriptor & 3]
    width = (1 if single else 0, 2, 4, 8)[flag]
    if width == 0:
        return None
    size = int.from_bytes(bytes(data[start:start + width]), "little")
    return size + 256 if width == 2 else size


def _key(array, coords: tuple[int, ...]) -> str:
    """The store key of chunk ``coords`` of ``array``."""
    key = array.metadata.encode_chunk_key(coords)
    return f"{array.path}/{key}" if array.path else key


def chunk_of(selection, chunk_shape, shape) -> tuple[tuple, tuple] | None:
    """(coordinates, extent) of the one chunk ``selection`` covers exactly, else None.

    Examples
    --------
    >>> chunk_of((slice(4, 8), slice(6, 7)), (4, 3), (10, 7))
    ((1, 2), (4, 1))
    >>> chunk_of((slice(4, 7), slice(0, 3)), (4, 3), (10, 7)) is None
    True
    """
    if not isinstance(selection, tuple) or len(selection) != len(shape):
        return None
    coords, extent = [], []
    for s, c, n in zip(selection, chunk_shape, shape):
        if not isinstance(s, slice) or s.step not in (None, 1):
            return None
        start, stop = s.start or 0, n if s.stop is None else s.stop
        if start % c or stop != min(start + c, n):
            return None
        coords.append(start // c)
        extent.append(stop - start)
    return tuple(coords), tuple(extent)


@dataclasses.dataclass(frozen=True)
class ChunkWriter:
    """A ``da.store`` target writing whole chunks of ``array`` directly, the rest through zarr.

    A block that is exactly one chunk is encoded as it is (an edge chunk first
    padded with the fill value, as zarr stores it) and set in the store; one
    equal to the fill value everywhere is not written, as zarr does by default,
    unless the array's config says ``write_empty_chunks=True``.  Pickles to
    worker processes with its array.
    """

    array: Any
    stored: Layout
    write_empty: bool = False

    @classmethod
    def of(cls, array):
        """A writer for ``array`` when :func:`layout` accepts it, else ``array`` itself."""
        stored = layout(array)
        return array if stored is None else cls(array, stored, _writes_empty_chunks(array))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.stored.dtype

    @property
    def ndim(self) -> int:
        return len(self.array.shape)

    def __setitem__(self, index, value) -> None:
        found = chunk_of(index, self.stored.chunk_shape, self.array.shape)
        value = np.asarray(value)
        if found is None or value.shape != found[1] or value.dtype != self.stored.dtype:
            self.array[index] = value
            return
        self._write(found[0], value)

    def _write(self, coords: tuple[int, ...], value: np.ndarray) -> None:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        if not self.write_empty and _all_fill(value, self.stored.fill_value):
            sync(self.array.store.delete(_key(self.array, coords)))
            return
        if value.shape != self.stored.chunk_shape:
            whole = np.full(self.stored.chunk_shape, self.stored.fill_value, self.stored.dtype)
            whole[tuple(slice(0, n) for n in value.shape)] = value
            value = whole
        value = np.ascontiguousarray(value)
        data = value.view(np.uint8).reshape(-1)
        if self.stored.codec is not None:
            data = self.stored.codec.encode(data if self.stored.encodes_bytes else value)
        key = _key(self.array, coords)
        if not _put_local(self.array.store, key, data):
            buffer = default_buffer_prototype().buffer.from_bytes(data)
            sync(self.array.store.set(key, buffer))


def _put_local(store, key: str, data) -> bool:
    """Write a chunk's bytes into a local store's folder, never making the folder again.

    zarr's ``LocalStore`` makes every missing parent of a chunk it writes: a task
    still running when a failed computation's temporary output was removed made it
    again (dask.distributed, a task failing: ``.out.zarr.XXXX/...`` came back).
    Here each folder below the store's root is made on its own, so a removed root
    is a FileNotFoundError for that task, and nothing reappears.  False when the
    store is not a local folder (zarr writes it).
    """
    import zarr.storage

    if not isinstance(store, zarr.storage.LocalStore):
        return False
    folder = Path(store.root)
    if not folder.is_dir():
        raise FileNotFoundError(f"zarr store {str(folder)!r} is gone; the chunk {key!r} "
                                "was not written")
    *parents, name = key.split("/")
    for part in parents:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            folder.mkdir()  # never parents=True: see above
    raw = data if isinstance(data, bytes | bytearray) else \
        memoryview(np.ascontiguousarray(data)).cast("B")
    (folder / name).write_bytes(raw)
    return True


def _writes_empty_chunks(array) -> bool:
    """The array's ``write_empty_chunks``: fixed when it was opened, from its ``config=``
    or, failing that, from ``zarr.config``'s ``array.write_empty_chunks``."""
    inner = getattr(array, "async_array", None)
    # ``config`` since zarr 3.1.5 (``_config`` before).
    config = getattr(inner, "config", None) or getattr(inner, "_config", None)
    return bool(getattr(config, "write_empty_chunks", False))


def _all_fill(value: np.ndarray, fill) -> bool:
    """Whether every element of ``value`` is ``fill`` (NaN counting as equal to NaN)."""
    fill = np.asarray(fill, value.dtype)
    if value.size and not np.array_equal(value.flat[0], fill, equal_nan=value.dtype.kind in "fc"):
        return False  # the usual case, told from one element
    return np.array_equal(value, np.broadcast_to(fill, value.shape),
                          equal_nan=value.dtype.kind in "fc")
