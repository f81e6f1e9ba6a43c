"""Out-of-core input and output by file extension: :func:`open_image`, :func:`write_image`.

The library's functions, which the command line uses too.  Inputs open lazily
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

import collections
import dataclasses
import functools
import json
import math
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from fftconv._io.tiff_scale import ome_tiff_letters, ome_tiff_metadata

FORMATS = (".zarr", ".npy", ".tif", ".tiff")


class InputError(ValueError):
    """An input, kernel or output that cannot be used (the command line's exit status 2)."""


def _format(path: Path, role: str) -> str:
    """The format ``path`` names: its extension, or an array inside a ``.zarr`` group."""
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return ".tif" if suffix == ".tiff" else suffix
    if any(part.lower().endswith(".zarr") for part in path.parts[:-1]):
        return ".zarr"  # an array inside a zarr group: image.zarr/0
    raise InputError(f"{role} {str(path)!r}: unknown format {suffix or '(none)'!r}; "
                     f"use one of {', '.join(FORMATS)}, or name an array inside a "
                     ".zarr group (image.zarr/name)")


def output_format(path: str | os.PathLike) -> str:
    """The format :func:`write_image` writes at ``path``: ``.zarr``, ``.npy`` or ``.tif``."""
    return _format(Path(path), "output")


def _zarr_group(folder: Path) -> tuple[int, bool] | None:
    """The zarr format of the group stored in ``folder`` and whether its metadata is
    consolidated; None when ``folder`` holds no group."""
    if (folder / ".zgroup").is_file():
        return 2, (folder / ".zmetadata").is_file()
    try:
        found = json.loads((folder / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("node_type") != "group":
        return None
    return 3, found.get("consolidated_metadata") is not None


def _consolidate(folder: Path, fmt: int) -> None:
    """Consolidate the metadata of the group in ``folder`` again (it was consolidated).

    A consolidated group is opened from its index alone, so an array just
    moved into it would be missing (``group[name]`` a KeyError) until then.
    """
    import warnings

    import zarr

    with warnings.catch_warnings():  # v3's: "not part of the specification"; it was in use
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(str(folder), zarr_format=fmt)


def _zarr_array(path: Path, role: str = "input"):
    """The zarr array at ``path``, opened: or an OME-Zarr group's full-resolution array.

    Microscopy's OME-Zarr (NGFF) stores an image as a group of resolution
    levels, listed in its ``multiscales`` metadata (under ``ome`` from NGFF 0.5
    on), the full resolution first.
    """
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return node
    scale = multiscale(node)
    if not scale:
        names = sorted(name for name, _ in node.arrays())
        raise InputError(f"{role} {str(path)!r} is a zarr group without OME-Zarr multiscales "
                         f"metadata; name one of its arrays: {names}")
    return node[scale["datasets"][0]["path"]]


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
    ``fftconv._tiling.dask``), while a dask chunk cutting one would decode all of it
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


def open_image(path: str | os.PathLike, chunks="auto"):
    """Open an image file as a lazy dask array, each chunk read by path when a task needs it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.zarr`` array (of an OME-Zarr group, its full resolution; one
        array of a group as ``image.zarr/0``), a ``.npy`` file
        (memory-mapped) or a ``.tif`` / ``.tiff`` (memory-mapped when
        uncompressed and contiguous, else read tile by tile through
        tifffile's zarr store; of a pyramid, its full resolution).
    chunks : int, tuple or "auto", optional
        The dask chunks.  ``"auto"`` keeps the file's own chunks (a zarr
        store's, a TIFF's tiles or strips) when they hold at least 4 MiB (one
        decode per chunk); else it takes dask's ``"auto"`` in blocks of about
        16 MiB (dask's default, 128 MiB, is far more working memory per task),
        each of whole stored chunks.

    Returns
    -------
    dask.array.Array
        Nothing is read until it is computed.

    Raises
    ------
    ValueError
        The format is unknown, or the file is missing or unreadable.

    Notes
    -----
    Every task reads its chunk by path in the process that runs it, so the
    array suits the ``processes`` scheduler and dask.distributed workers as
    well as threads (on a cluster of machines, on a file system they share).
    ``da.from_array(np.load(path, mmap_mode="r"))`` does not: current dask
    copies a ``np.memmap`` whole into memory when the array is made (dask
    issue #11850), and other processes get that copy pickled into every task.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fftconv
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "image.npy"), np.ones((300, 200), np.float32))
    >>> image = fftconv.open_image(os.path.join(folder, "image.npy"), chunks=100)
    >>> image.chunks
    ((100, 100, 100), (100, 100))
    >>> blurred = fftconv.convolve(image, np.ones((5, 5), np.float32) / 25, boundary="reflect")
    >>> out = fftconv.write_image(blurred, os.path.join(folder, "blurred.zarr"))
    >>> float(fftconv.open_image(out)[150, 100].compute())
    1.0
    """
    return open_file(path, chunks, "input")


def open_file(path: str | os.PathLike, chunks="auto", role: str = "input"):
    """:func:`open_image`, its errors naming the file by its ``role`` (``"kernel"``)."""
    import dask.array as da

    path = Path(path)
    kind = _format(path, role)
    if not path.exists():
        raise InputError(f"{role} {str(path)!r} does not exist")
    try:
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
        return np.asarray(_tiff_store(self.path, self.modified)[index])


class _TiffStores:
    """The open tifffile stores of the last few TIFFs read, by path; one per process.

    Opening a store parses the file's IFDs, so each process keeps a few open.  A
    store pushed out, or left stale by a file rewritten since (another
    ``modified``), is closed at once: left to the garbage collector, its file
    handle would stay open until then and warn as it went.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.open: collections.OrderedDict = collections.OrderedDict()  # path: stamp, store, array
        self.lock = threading.Lock()

    def __call__(self, path: str, modified: int):
        with self.lock:
            stamp, store, array = self.open.pop(path, (modified, None, None))
            if stamp != modified:
                store.close()
                store = None
            if store is None:
                store, array = _open_tiff_store(path)
            self.open[path] = (modified, store, array)
            while len(self.open) > self.size:
                _, (_, evicted, _) = self.open.popitem(last=False)
                evicted.close()
            return array


def _open_tiff_store(path: str):
    import tifffile
    import zarr

    # level 0: a pyramid's (OME-TIFF, slide scanners) full resolution, else a group
    store = tifffile.imread(path, aszarr=True, level=0)
    return store, zarr.open(store, mode="r")


_tiff_store = _TiffStores()


def check_output(path: str | os.PathLike, overwrite: bool, inputs=()) -> Path:
    path = Path(path)
    _format(path, "output")
    target = path.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if target == source:
            raise InputError(f"output {str(path)!r} is also an input; choose another path")
        if source in target.parents:  # a zarr store, a folder: the input would change
            raise InputError(f"output {str(path)!r} is inside the input {str(given)!r}; "
                             "choose another path")
        if target in source.parents:  # replacing it would delete the input and its siblings
            raise InputError(f"output {str(path)!r} holds the input {str(given)!r}; choose "
                             "another path")
    if path.exists() and not overwrite:
        raise InputError(f"output {str(path)!r} exists; pass --overwrite to replace it")
    if not path.parent.exists():
        raise InputError(f"output directory {str(path.parent)!r} does not exist")
    return path


def _replace(tmp: Path, path: Path) -> None:
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        os.replace(tmp, path)


def output_codec(zarr_format: int = 3):
    """Blosc-zstd level 1 with byte shuffle, for zarr outputs (v3's codec, or v2's).

    Convolved images are smooth and dense: zarr's default (zstd level 3) spends
    155 ms encoding a 2048² float32 chunk of one, more than its FFT; byte
    shuffle + zstd level 1 takes 41 ms and compresses it better (2.2× vs 2.0×).
    """
    if zarr_format == 2:
        import numcodecs

        return numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
    import zarr

    return zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")


def write_image(array, path: str | os.PathLike, *, overwrite: bool = False,
                dimension_names=None, ome: dict | None = None, **compute) -> Path:
    """Write ``array`` to an image file block by block, atomically.

    Parameters
    ----------
    array : dask.array.Array or array_like
        What to write; a NumPy array is written as one dask array of it.
    path : str or os.PathLike
        The target, by extension: ``.zarr`` (Blosc-zstd with byte shuffle,
        chunked like ``array``), ``.npy``, or ``.tif`` / ``.tiff``
        (uncompressed and contiguous, tifffile's memory-mappable layout,
        BigTIFF past 4 GiB).  A name with none of these inside a ``.zarr``
        folder (``data.zarr/blurred``) is an array of that group, in the
        group's zarr format (a v2 array keeps ``dimension_names`` in xarray's
        ``_ARRAY_DIMENSIONS``); a group with consolidated metadata is
        consolidated again, so that it lists the new array.
    overwrite : bool, optional
        Replace an existing ``path``.  The old file stays until the new one is
        complete, so the target may even be the array's own input.
    dimension_names : sequence of str, optional
        Each axis's name, kept where the format has room for it: a zarr
        array's ``dimension_names``, a TIFF's axes when each name is one
        letter (``"c", "y", "x"`` as ``CYX``).  A ``.npy`` file has none.
    ome : dict, optional
        An OME-Zarr (NGFF) ``multiscales`` entry; its axes name the array's
        dimensions.  For a ``.zarr`` output, ``path`` is then an OME-Zarr
        image, a group holding the array at the first dataset's path, which
        microscopy viewers (napari, Fiji) place by its axes and
        ``coordinateTransformations``: written as NGFF 0.5 (zarr v3), or as
        0.4 (zarr v2) when the entry says ``"version": "0.4"``.  Datasets
        after the first are coarser levels of a pyramid, for viewers zoomed
        out: each scale a whole multiple of the one before, each level the
        mean of as many pixels of the level before, computed from the same
        blocks in the same pass.  For a ``.tif`` output, an OME-TIFF with the
        first dataset's scale as its pixel sizes (``PhysicalSizeX``...; no
        origin: OME-TIFF has none), where the axes are named x, y, z, c and
        t, each once, ending with y, x; the coarser levels are its reduced
        images (SubIFDs), as slide viewers read them.
    **compute
        Passed to :func:`dask.array.store`: ``scheduler=``, ``num_workers=``...

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        The format is unknown, or ``ome`` is not an entry for this array.
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        ``path``'s folder does not exist.

    Notes
    -----
    Each block is written by the process that computed it (the ``processes``
    scheduler and dask.distributed workers too), to a temporary path beside
    ``path`` that is moved into place only when every block is written: a
    failed or interrupted run leaves no half-written output, and an existing
    one as it was.  Nothing is held whole in memory, whatever the size.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fftconv
    >>> target = os.path.join(tempfile.mkdtemp(), "ones.tif")
    >>> fftconv.write_image(np.ones((64, 48), np.float32), target).name
    'ones.tif'
    >>> fftconv.open_image(target).shape
    (64, 48)
    """
    import dask.array as da

    path = Path(path)
    kind = _format(path, "output")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {str(path)!r} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(path.parent)!r} does not exist")
    array = array if isinstance(array, da.Array) else da.asarray(array)
    names = _names(dimension_names, array.ndim)
    if ome is not None:
        names = _ome_names(ome, array.shape, names, kind)
    group = _zarr_group(path.parent) if kind == ".zarr" else None  # (format, consolidated)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        if kind == ".zarr":
            from fftconv._io.zarr_direct import ChunkWriter

            array = on_a_grid(array)
            sources = [array, *_coarser_levels(array, ome)]
            # Whole chunks are encoded and stored as zarr would, without its copy.
            fmt = group[0] if group else 3  # an array in a zarr v2 group is v2 too
            targets = [ChunkWriter.of(z) for z in _zarr_targets(tmp, sources, names, ome, fmt)]
        elif kind == ".npy":
            sources = [array]
            targets = [_created(np.lib.format.open_memmap(tmp, mode="w+", dtype=array.dtype,
                                                          shape=array.shape))]
        else:
            sources = [array, *_coarser_levels(array, ome)]
            targets = _tiff_targets(tmp, sources, names, ome)
        da.store(sources, targets, lock=False, **compute)
        _replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    if group and group[1]:  # after the temporary folder is gone: not an array of the group
        _consolidate(path.parent, group[0])
    return path


def _coarser_levels(array, ome: dict | None) -> list:
    """The dask arrays of ``ome``'s datasets after the first: each the mean of the one before.

    They are computed from the same blocks as ``array``, in the same pass: no
    level is read back.
    """
    from fftconv._io.pyramid import coarser_level, level_factors

    if ome is None or len(ome["datasets"]) == 1:
        return []
    levels = [array]
    for factors in level_factors(ome["datasets"], array.ndim):
        levels.append(coarser_level(levels[-1], factors, array.chunksize))
    return levels[1:]


def _zarr_targets(tmp: Path, levels: list, names, ome: dict | None, fmt: int) -> list:
    """The zarr arrays at ``tmp`` to store ``levels`` in: one array, or an OME-Zarr group's.

    One array is zarr format ``fmt``; v2 has no ``dimension_names`` and keeps
    them where xarray looks, in ``_ARRAY_DIMENSIONS``.  An OME-Zarr image's
    format is its NGFF version's.
    """
    import zarr

    array = levels[0]
    layout = {"shape": array.shape, "dtype": array.dtype, "chunks": array.chunksize}
    if ome is None and fmt == 2:
        return [zarr.create_array(str(tmp), zarr_format=2, compressors=output_codec(2),
                                  attributes={"_ARRAY_DIMENSIONS": list(names)} if names else None,
                                  **layout)]
    if ome is None:
        return [zarr.create_array(str(tmp), compressors=output_codec(), dimension_names=names,
                                  **layout)]
    dataset = {"coordinateTransformations": [{"type": "scale", "scale": [1.0] * array.ndim}],
               **ome["datasets"][0]}  # NGFF requires a level's scale: 1 when none is given
    entry = {**{k: v for k, v in ome.items() if k != "version"},
             "datasets": [dataset, *ome["datasets"][1:]]}
    if ome.get("version") == "0.4":  # NGFF 0.4: zarr v2, the version in the entry
        group = zarr.create_group(str(tmp), zarr_format=2,
                                  attributes={"multiscales": [{"version": "0.4", **entry}]})
        options = {"compressors": output_codec(2)}
    else:
        group = zarr.create_group(str(tmp), attributes={"ome": {"version": "0.5",
                                                               "multiscales": [entry]}})
        options = {"compressors": output_codec(), "dimension_names": names}
    return [group.create_array(str(d["path"]).strip("/"), shape=level.shape, dtype=level.dtype,
                               chunks=level.chunksize, **options)
            for d, level in zip(entry["datasets"], levels)]


def _tiff_targets(tmp: Path, levels: list, names, ome: dict | None) -> list:
    """The regions of a new TIFF at ``tmp`` to store ``levels`` in, each mapped by path.

    One level is tifffile's memory-mappable layout.  A pyramid is an OME-TIFF
    whose full resolution holds the coarser levels as reduced images in its
    SubIFDs (Bio-Formats' and QuPath's layout), each level uncompressed and
    contiguous so that blocks are written into it in place.
    """
    import tifffile

    array = levels[0]
    layout = ome_tiff_metadata(ome, array.shape) if ome else _tiff_layout(array.shape, names)
    if len(levels) == 1:
        return [_created(tifffile.memmap(tmp, shape=array.shape, dtype=array.dtype, **layout))]
    big = sum(level.nbytes for level in levels) > 2**32 - 2**25  # tifffile's own threshold
    layout.pop("ome")
    offsets = []
    with tifffile.TiffWriter(tmp, bigtiff=big, ome=True) as tif:
        for i, level in enumerate(levels):
            place = {"subifds": len(levels) - 1, **layout} if i == 0 else {
                "subfiletype": 1, "photometric": layout["photometric"], "metadata": None}
            offset, _ = tif.write(data=None, shape=level.shape, dtype=level.dtype,
                                  returnoffset=True, align=tifffile.TIFF.ALLOCATIONGRANULARITY,
                                  **place)
            offsets.append(offset)
    modified = os.stat(tmp).st_mtime_ns
    return [MappedFile(str(tmp), offset, level.shape, np.dtype(level.dtype), "C", modified)
            for offset, level in zip(offsets, levels)]


def _ome_names(ome, shape: tuple[int, ...], names, kind: str) -> tuple[str, ...]:
    """The dimension names ``ome``'s axes give, after checking it is an entry for ``shape``."""
    ndim = len(shape)
    if kind == ".npy":
        raise ValueError("ome= describes an OME-Zarr image or an OME-TIFF; the output is a "
                         ".npy file")
    axes = ome.get("axes") if isinstance(ome, dict) else None
    datasets = ome.get("datasets") if isinstance(ome, dict) else None
    if not isinstance(axes, list) or len(axes) != ndim or not all(
            isinstance(a, dict) and isinstance(a.get("name"), str) for a in axes):
        raise ValueError(f"ome= needs 'axes': one {{'name': ...}} per axis of the "
                         f"{ndim}-D array; got {axes!r}")
    paths = [str(d.get("path", "")).strip("/") if isinstance(d, dict) else ""
             for d in datasets] if isinstance(datasets, list) else []
    if not paths or not all(paths) or len(set(paths)) != len(paths):
        raise ValueError(f"ome= needs 'datasets': one level or more, each with a 'path' of "
                         f"its own; got {datasets!r}")
    if len(paths) > 1:
        from fftconv._io.pyramid import first_empty, level_factors

        empty = first_empty(shape, level_factors(datasets, ndim))
        if empty is not None:
            index, total = empty
            raise ValueError(f"ome= level {paths[index + 1]!r} would be empty: {shape} pixels "
                             f"averaged over {total}")
    if ome.get("version", "0.5") not in ("0.4", "0.5"):
        raise ValueError(f"ome= version {ome['version']!r} is not one of '0.4', '0.5'")
    if kind == ".tif" and ome_tiff_letters(ome, shape) is None:
        raise ValueError(f"ome= axes {[a['name'] for a in axes]} are not OME-TIFF's: x, y, z, "
                         "c and t, each once, ending with y, x (or y, x, c of 3 or 4 samples)")
    named = tuple(a["name"] for a in axes)
    if names is not None and names != named:
        raise ValueError(f"dimension_names={names!r} differ from ome='s axes {named!r}")
    return named


def _names(names, ndim: int) -> tuple[str, ...] | None:
    if names is None:
        return None
    names = tuple(str(n) for n in names)
    if len(names) != ndim:
        raise ValueError(f"dimension_names has {len(names)} names for {ndim} axes")
    return names


def _tiff_layout(shape: tuple[int, ...], names) -> dict:
    """tifffile's ``photometric`` and, when the names are its axes letters, ``metadata``."""
    letters = "".join(names or ()).upper()
    if len(letters) == len(shape) and len(set(letters)) == len(letters):
        rgb = letters.endswith("S") and shape[-1] in (3, 4)  # tifffile's samples axis
        return {"photometric": "rgb" if rgb else "minisblack", "metadata": {"axes": letters}}
    # tifffile's present default, stated: it warns that it will change.
    rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    return {"photometric": "rgb" if rgb else "minisblack"}


def on_a_grid(array):
    """``array`` with chunks that a zarr chunk grid can hold: equal, but for each axis's last.

    A zarr chunk is written whole: a dask block covering part of one reads it,
    changes its part and writes it back.  Two blocks sharing a zarr chunk (a
    ``full`` convolution's blocks end ``..., 36, 28, 8`` on a grid of 36) then
    race on threads, and one block's values are lost.  Irregular blocks are
    rechunked to the grid of the largest; regular ones are left alone.
    """
    def regular(sizes) -> bool:
        return all(n == sizes[0] for n in sizes[:-1]) and sizes[-1] <= sizes[0]

    if all(regular(c) for c in array.chunks):
        return array
    return array.rechunk(array.chunksize)


def _created(mapped: np.memmap) -> MappedFile:
    """The new file ``mapped`` maps, its header on disk, as a target that maps it per write."""
    mapped.flush()
    return MappedFile.of(mapped)


@dataclasses.dataclass(frozen=True)
class MappedFile:
    """An array stored raw at ``offset`` in the file at ``path``: a source and a target.

    Each read or write maps the file in the process that makes it.  A
    ``np.memmap`` is pickled to worker processes (the ``processes`` scheduler,
    dask.distributed) as a copy of its data: as a ``da.store`` target its
    writes were lost (a ``.npy`` output came out all zeros), and as a source
    every task carried the whole image (a 64 MiB ``.npy`` took 37 s at
    1.3 GiB, against 0.7 s on threads).
    """

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype
    order: str = "C"
    modified: int = 0  # the file's mtime when opened: part of the dask token

    @classmethod
    def of(cls, mapped: np.memmap) -> MappedFile:
        """The array ``mapped`` maps, by path: reads and writes map it again."""
        order = "F" if mapped.flags.f_contiguous and not mapped.flags.c_contiguous else "C"
        path = str(mapped.filename)
        return cls(path, int(mapped.offset), mapped.shape, mapped.dtype, order,
                   os.stat(path).st_mtime_ns)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _map(self, mode: str) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=mode, offset=self.offset,
                         shape=self.shape, order=self.order)

    def __getitem__(self, index) -> np.ndarray:
        return _reading(self)[index]  # a view, as a memmap source gave

    def __setitem__(self, index, value) -> None:
        # A map per write: one kept open would hold every written page in RSS to the end
        # (a .npy output of 1 GiB peaked at 1.3 GiB that way).
        self._map("r+")[index] = value


@functools.lru_cache(maxsize=8)
def _reading(source: MappedFile) -> np.memmap:
    """``source`` mapped for reading, once per process.

    Mapping it again for each read (and copying out) took twice as long:
    22 ms against 11.5 ms for a 2048² float32 region of a 16384² ``.npy``.
    The pages it reads stay in RSS while mapped, but they are the file's page
    cache: the kernel drops clean pages under pressure, mapped or not.
    """
    return source._map("r")
