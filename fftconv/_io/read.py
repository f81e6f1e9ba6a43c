"""open_image: image files read lazily, as dask arrays, by file extension.

The library's functions, which the command line uses too (the writing side is
:mod:`.write`).  Inputs open lazily
as dask arrays: ``.zarr`` (zarr), ``.npy`` (memory mapped), ``.tif``/``.tiff``
(memory mapped when uncompressed and contiguous, else tile by tile through
tifffile's zarr store).  Files are read and written by path
(:class:`MappedFile`, :class:`TiffTiles`), so tasks pickle small and worker
processes read and write the file themselves.  Outputs are written from the
graph, block by block, to a temporary path beside the target and moved into
place only when complete, so an interrupted or failed run never leaves a
half-written file at the target, and the input is never opened for writing.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from fftconv._infra.cache import Cache
from fftconv._io.fits import open_fits
from fftconv._io.formats import InputError, file_format
from fftconv._io.hdf5 import open_hdf5
from fftconv._io.mapped import MappedFile
from fftconv._io.urls import is_remote, local, remote_kind


def _zarr_array(path: Path, role: str = "input"):
    """The zarr array at ``path``, opened: or an OME-Zarr group's full-resolution array.

    Microscopy's OME-Zarr (NGFF) stores an image as a group of resolution
    levels, listed in its ``multiscales`` metadata (under ``ome`` from NGFF 0.5
    on), the full resolution first.
    """
    import zarr

    node = series(zarr.open(str(path), mode="r"))
    if isinstance(node, zarr.Array):
        return node
    scale = multiscale(node)
    if not scale:
        names = sorted(name for name, _ in node.arrays())
        raise InputError(f"{role} {str(path)!r} is a zarr group without OME-Zarr multiscales "
                         f"metadata; name one of its arrays: {names}")
    return node[scale["datasets"][0]["path"]]


def series(node):
    """A bioformats2raw container's first series (its group ``0``), else ``node`` itself.

    bioformats2raw (what converts a microscope's files to OME-Zarr) writes each
    series of a file as an image group ``0``, ``1``... under a root that says
    ``"bioformats2raw.layout"``; ``image.zarr/1`` names another series.
    """
    attrs = getattr(node, "attrs", {})
    if "bioformats2raw.layout" in attrs or "bioformats2raw.layout" in attrs.get("ome", {}):
        return node["0"]
    return node


def multiscale(group) -> dict | None:
    """A zarr group's first OME-Zarr multiscale image (its levels and axes), or None."""
    attrs = dict(group.attrs)
    scales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    return scales[0] if scales else None


# "auto" chunks of a store whose own are small, or of a file that has none (.npy, a
# contiguous TIFF): about 2048² float32.  Dask's own "auto" (its array.chunk-size,
# 128 MiB) is far more working memory per task and no faster: a 16384² float32 TIFF in
# 512² zlib tiles ⊛ a 201² disk (Python's zlib, before imagecodecs was installed)
# took 23.2 s at 1452 MiB in dask's 5632² chunks,
# against 17.6 s at 329 MiB in 2048² (20.7 s at 691 MiB in 4096², 19.7 s at 294 MiB in
# 1024²); the same image as a .npy, 8.1 s at 2392 MiB against 6.6 s at 1318 MiB (the
# mapped file's pages count in RSS).
AUTO_CHUNK_BYTES = 16 * 2**20


def _chunks(source, chunks):
    """The dask chunks of ``source`` (a zarr array, :class:`TiffTiles`, :class:`MappedFile`).

    ``chunks`` as given (a tuple checked against the axes, :func:`_fit`), or
    for ``"auto"``: the source's stored chunks (a zarr store's, a TIFF's tiles
    or strips) when they hold at least 4 MiB, as they are: reading one is then
    one decode, and the halo strips can be re-read straight from the store (see
    ``fftconv._tiling.tiled``), while a dask chunk cutting one would decode all of it
    for each piece.  Smaller ones (or none) are joined, as dask's ``"auto"``
    joins them, into blocks of about :data:`AUTO_CHUNK_BYTES`.
    """
    from dask.array.core import normalize_chunks

    if chunks != "auto":
        return _fit(chunks, source.ndim)
    stored = getattr(source, "chunks", None)
    dtype = np.dtype(source.dtype)
    if stored is not None and math.prod(stored) * dtype.itemsize >= 4 * 2**20:
        return tuple(stored)
    return normalize_chunks("auto", source.shape, limit=AUTO_CHUNK_BYTES, dtype=dtype,
                            previous_chunks=stored)


def open_file(path: str | os.PathLike, chunks="auto", role: str = "input"):
    """:func:`open_image`, its errors naming the file by its ``role`` (``"kernel"``)."""
    import dask.array as da

    path = local(path)
    if is_remote(path):  # a zarr store reached through fsspec
        remote_kind(str(path), role)
        try:
            native = _zarr_array(str(path), role)
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError(f"{role} {str(path)!r} does not exist") from None
        except Exception as err:
            if isinstance(err, ImportError):
                raise
            raise InputError(f"{role} {str(path)!r} could not be read: {err}") from None
        return da.from_zarr(native, chunks=_chunks(native, chunks))
    path = Path(path)
    kind = file_format(path, role)
    if kind != ".h5" and not path.exists():
        raise InputError(f"{role} {str(path)!r} does not exist")
    try:
        if kind == ".h5":
            return _lazy(open_hdf5(path, role), chunks)
        if kind == ".fits":
            stored = _lazy(open_fits(path), chunks)  # FITS is big-endian: native for work
            return stored.astype(stored.dtype.newbyteorder("="))
        if kind == ".zarr":
            native = _zarr_array(path, role)  # opened once: its chunks, then its reads
            return da.from_zarr(native, chunks=_chunks(native, chunks))
        if kind == ".npy":
            return _lazy(MappedFile.of(np.load(path, mmap_mode="r")), chunks)
        import tifffile

        try:
            mapped = tifffile.memmap(str(path), mode="r")
        except ValueError:  # tiled or compressed: tile by tile
            return _tiff_tiles(path, chunks)
        return _lazy(MappedFile.of(mapped), chunks)
    except InputError:
        raise
    except Exception as err:  # any reader's own error: the file is unreadable
        raise InputError(f"{role} {str(path)!r} could not be read: {err}") from None


def _lazy(source, chunks):
    """A dask array reading ``source`` (a :class:`MappedFile` or :class:`TiffTiles`) by chunks."""
    import dask.array as da

    meta = np.empty((0,) * source.ndim, dtype=source.dtype)
    return da.from_array(source, chunks=_chunks(source, chunks), meta=meta)


def _fit(chunks, ndim: int):
    """``chunks``, if a tuple of them has one entry per axis (else the user's error, named)."""
    if isinstance(chunks, tuple) and len(chunks) != ndim:
        raise InputError(f"chunks {chunks} give {len(chunks)} sizes for the image's {ndim} "
                         "axes")
    return chunks


def _tiff_tiles(path: Path, chunks):
    """A tiled or compressed TIFF read through tifffile's zarr store (its tiles as chunks)."""
    stamp = path.stat().st_mtime_ns
    opened = _tiff_store(str(path), stamp)
    return _lazy(TiffTiles(str(path), stamp, opened.shape, opened.dtype, opened.chunks), chunks)


@dataclasses.dataclass(frozen=True)
class TiffTiles:
    """A tiled or compressed TIFF by path, read through tifffile's zarr store.

    The store holds an open file and a lock, which cannot be pickled to worker
    processes; this can, and each process opens the file once
    (:func:`_tiff_store`).  ``modified`` (the file's mtime) keeps a rewritten
    file from being read through a stale store.
    """

    path: str
    modified: int
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...]  # the store's: "auto" keeps whole tiles, as from_zarr did

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        try:
            return np.asarray(_tiff_store(self.path, self.modified)[index])
        except (MemoryError, OSError):
            raise
        except Exception as err:  # a codec's error (zlib, LZW, JPEG...): the tile is damaged
            raise InputError(f"{self.path}: the tiles of {_region(index)} could not be "
                             f"decoded, the file is damaged ({type(err).__name__}: {err})"
                             ) from err


def _region(index) -> str:
    """``index`` (a tuple of slices) as rows and columns: ``[0:64, 128:192]``."""
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(f"{s.start or 0}:{s.stop}" if isinstance(s, slice) else str(s)
                           for s in parts) + "]"


def _open_tiff_store(path: str):
    import tifffile
    import zarr

    # level 0: a pyramid's (OME-TIFF, slide scanners) full resolution, else a group
    store = tifffile.imread(path, aszarr=True, level=0)
    return store, zarr.open(store, mode="r")


# The open tifffile stores of the last few TIFFs read, by path; one per process.  Opening
# a store parses the file's IFDs, so each process keeps a few open.  A store pushed out,
# or left stale by a file rewritten since (another ``modified``), is closed at once: left
# to the garbage collector, its file handle would stay open until then and warn as it went.
_tiff_stores = Cache("open TIFF stores", entries=4, on_drop=lambda entry: entry[1].close())


def _tiff_store(path: str, modified: int):
    """The zarr array of the TIFF at ``path`` as it was at ``modified``."""
    entry = _tiff_stores.get_or_make(path, lambda: (modified, *_open_tiff_store(path)),
                                     fits=lambda entry: entry[0] == modified)
    return entry[2]
