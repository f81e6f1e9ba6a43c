"""write_image: a NumPy or dask array to ``.zarr`` (OME-Zarr), ``.npy`` or ``.tif``.

The output is written to a temporary sibling and moved into place when
complete; a zarr chunk is encoded straight into its stored form
(:mod:`.zarr_direct`), a ``.npy`` or ``.tif`` through a memory map
(:mod:`.mapped`).  Pyramid levels and OME metadata follow the ``ome=`` record.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fftconv._core.lazy import is_dask_array
from fftconv._infra.files import move_new, move_replacing
from fftconv._io.codecs import tiff_codec, zarr_codec
from fftconv._io.fits import fits_target
from fftconv._io.formats import InputError, file_format
from fftconv._io.guarded import Guarded, Run
from fftconv._io.image import from_labelled
from fftconv._io.mapped import MappedFile, created, on_a_grid
from fftconv._io.pyramid import coarser_level, first_empty, level_factors
from fftconv._io.tiff_compressed import write_compressed_tiff
from fftconv._io.tiff_scale import ome_tiff_letters, ome_tiff_metadata
from fftconv._io.urls import fs_of, is_remote, local, remote_kind
from fftconv._io.zarr_direct import ChunkWriter

# What each format stores: numbers (TIFF has no booleans: tifffile would write them as
# bytes, which read back as uint8).
_STORABLE_KINDS = {".zarr": "biufc", ".npy": "biufc", ".tif": "iufc", ".fits": "iuf"}


def _lazy_storable(array, kind: str):
    """``array`` as a dask array, once ``kind`` is known to store it (a list is read as
    NumPy does; a zarr array or a memory map stays as it is, read lazily by dask)."""
    import dask.array as da

    if not (hasattr(array, "dtype") and hasattr(array, "ndim")):
        array = np.asarray(array)
    _check_storable(array, kind)
    return array if is_dask_array(array) else da.asarray(array)


def _check_storable(array, kind: str) -> None:
    """Refuse, in one clear line, what ``kind`` cannot hold: no dimensions, or the dtype."""
    dtype, ndim = np.dtype(array.dtype), array.ndim
    if ndim == 0:
        raise ValueError("write_image needs an array of at least one dimension (an image); "
                         "got a 0-d scalar")
    allowed = _STORABLE_KINDS[".tif" if kind in (".tif", ".tiff") else kind]
    if dtype.kind not in allowed:
        hint = " (write .astype(np.uint8) for a mask)" if dtype.kind == "b" else ""
        raise TypeError(f"a {kind} image cannot store dtype {dtype}; give a numeric array"
                        f"{hint}")


def check_output(path: str | os.PathLike, overwrite: bool, inputs=()) -> Path | str:
    path = local(path)
    if is_remote(path):
        remote_kind(str(path), "output")
        fs, where = fs_of(str(path))
        if fs.exists(where) and not overwrite:
            raise InputError(f"output {str(path)!r} exists; pass --overwrite to replace it")
        if any(str(local(given)).rstrip("/") == str(path).rstrip("/") for given in inputs):
            raise InputError(f"output {str(path)!r} is also an input; choose another path")
        return str(path)
    path = Path(path)
    file_format(path, "output")
    target = path.resolve()
    for given in inputs:
        if is_remote(given):
            continue
        source = Path(local(given)).resolve()
        if target == source:
            raise InputError(f"output {str(path)!r} is also an input; choose another path")
        if source in target.parents:  # a zarr store, a folder: the input would change
            raise InputError(f"output {str(path)!r} is inside the input {str(given)!r}; "
                             "choose another path")
        if target in source.parents:  # replacing it would delete the input and its siblings
            raise InputError(f"output {str(path)!r} holds the input {str(given)!r}; choose "
                             "another path")
    if os.path.lexists(path) and not overwrite:
        raise InputError(f"output {str(path)!r} exists; pass --overwrite to replace it")
    if not path.parent.exists():
        raise InputError(f"output directory {str(path.parent)!r} does not exist")
    return path


def output_codec(zarr_format: int = 3):
    """Blosc-zstd level 1 with byte shuffle, for zarr outputs (v3's codec, or v2's).

    Convolved images are smooth and dense: zarr's default (zstd level 3) spends
    155 ms encoding a 2048² float32 chunk of one, more than its FFT; byte
    shuffle + zstd level 1 takes 41 ms and compresses it better (2.2× vs 2.0×).
    """
    return zarr_codec(None, zarr_format)


def write_image(array, path: str | os.PathLike, *, overwrite: bool = False,
                dimension_names=None, ome: dict | None = None, chunks=None, shards=None,
                compression: str | None = None, header: dict | None = None,
                **compute) -> Path:
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
    chunks : int or tuple of int, optional
        The stored chunks of a ``.zarr`` output (default: the array's blocks, made
        regular); the blocks are made these first, so the computation's own
        chunking stays the caller's choice.
    shards : int or tuple of int, optional
        A zarr v3 output's shards: each holds whole ``chunks`` (a multiple of
        them) and is one file, written whole by one task.
    compression : str, optional
        ``.zarr``: ``"blosc-zstd"`` (default), ``"blosc-lz4"``, ``"zstd"``,
        ``"gzip"`` or ``"none"``; ``.tif``: ``"none"`` (default, written in place
        by every task), ``"deflate"``, ``"zstd"`` or ``"lzw"`` (tiles of up to
        512², a row of tiles computed at a time).  :mod:`fftconv._io.codecs`.
    header : dict or astropy Header, optional
        A ``.fits`` output's header cards (``WCS`` and all), but those that
        describe the stored array (:func:`fftconv._io.fits.moved_header` moves
        an input's reference pixels by a mode's window).
    **compute
        Passed to :func:`dask.array.store`: ``scheduler=``, ``num_workers=``...

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        The format is unknown, ``ome`` is not an entry for this array, or the
        array has no dimensions.
    TypeError
        The format cannot store the array's dtype.
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

    array, named, entry = from_labelled(array)  # an Image or a DataArray: its metadata
    path = local(path)
    if is_remote(path):
        return _write_remote(array, str(path), overwrite, named if dimension_names is None
                             else dimension_names, ome if ome is not None else entry,
                             chunks, shards, compression, compute)
    path = Path(path)
    kind = file_format(path, "output")
    if kind not in (".npy", ".fits"):  # formats with room for names and OME metadata
        dimension_names = named if dimension_names is None else dimension_names
        if ome is None and entry is not None and _fits(entry, array.shape, kind):
            ome = entry
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {str(path)!r} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(path.parent)!r} does not exist")
    array = _lazy_storable(array, kind)
    names = _names(dimension_names, array.ndim)
    if ome is not None:
        names = _ome_names(ome, array.shape, names, kind)
    group = _zarr_group(path.parent) if kind == ".zarr" else None  # (format, consolidated)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    run = Run()
    fmt = group[0] if group else 3  # an array in a zarr v2 group is v2 too
    codec = _codec(kind, compression, fmt, chunks, shards)  # checked before any work
    try:
        if kind == ".zarr":
            stored = _stored_chunks(array, chunks, shards, fmt)
            array = on_a_grid(array if stored is None else array.rechunk(stored))
            sources = [array, *_coarser_levels(array, ome)]
            # Whole chunks are encoded and stored as zarr would, without its copy.
            targets = [Guarded(ChunkWriter.of(z), tmp.parent, run)
                       for z in _zarr_targets(tmp, sources, names, ome, fmt, compression,
                                              chunks, shards)]
        elif kind == ".npy":
            sources = [array]
            targets = [created(np.lib.format.open_memmap(tmp, mode="w+", dtype=array.dtype,
                                                          shape=array.shape))]
        elif kind == ".fits":
            sources = [array]
            targets = [fits_target(tmp, array.shape, array.dtype, header)]
        else:
            sources = [array, *_coarser_levels(array, ome)]
            targets = [] if codec else _tiff_targets(tmp, sources, names, ome)
        if targets:
            da.store(sources, targets, lock=False, **compute)
        else:  # a compressed TIFF: encoded tile by tile, in order
            layout = ome_tiff_metadata(ome, array.shape) if ome else _tiff_layout(
                array.shape, names)
            write_compressed_tiff(tmp, sources, layout, codec, compute)
        if overwrite:  # the old output, if any, lands at tmp: removed with the folder
            move_replacing(tmp, path)
        else:
            try:
                move_new(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"output {str(path)!r} appeared while this run wrote "
                                      "it and was left as it is; pass overwrite=True to "
                                      "replace it") from None
    finally:
        run.abandon()  # the tasks still writing finish first; later ones write nothing
        shutil.rmtree(tmp.parent, ignore_errors=True)
    if group and group[1]:  # after the temporary folder is gone: not an array of the group
        _consolidate(path.parent, group[0])
    return path


def _coarser_levels(array, ome: dict | None) -> list:
    """The dask arrays of ``ome``'s datasets after the first: each the mean of the one before.

    They are computed from the same blocks as ``array``, in the same pass: no
    level is read back.
    """
    if ome is None or len(ome["datasets"]) == 1:
        return []
    levels = [array]
    for factors in level_factors(ome["datasets"], array.ndim):
        levels.append(coarser_level(levels[-1], factors, array.chunksize))
    return levels[1:]


def _write_remote(array, url: str, overwrite: bool, names, ome, chunks, shards, compression,
                  compute: dict) -> str:
    """:func:`write_image` to a zarr store reached through fsspec: written in place (an
    object store has no rename), and removed again if the run fails."""
    import dask.array as da

    remote_kind(url, "output")
    fs, where = fs_of(url)
    exists = fs.exists(where)
    if exists and not overwrite:
        raise FileExistsError(f"output {url!r} exists; pass overwrite=True to replace it")
    array, names = _zarr_blocks(_lazy_storable(array, ".zarr"), names, ome, compression,
                                chunks, shards)
    sources = [array, *_coarser_levels(array, ome)]
    if exists:  # the request checked first: an old output is not removed for a bad one
        fs.rm(where, recursive=True)
    try:
        targets = [ChunkWriter.of(z) for z in _zarr_targets(
            url, sources, names, ome, 3 if ome is None or ome.get("version") != "0.4" else 2,
            compression, chunks, shards)]
        da.store(sources, targets, lock=False, **compute)
    except BaseException:
        with contextlib.suppress(Exception):  # what was written of a failed run goes
            fs.rm(where, recursive=True)
        raise
    return url


def zarr_output(path: Path, array, *, dimension_names=None, ome: dict | None = None,
                chunks=None, shards=None, compression: str | None = None):
    """A new zarr array (or one-level OME-Zarr image) at ``path`` for ``array``, and
    ``array`` with blocks that are its stored chunks (or shards): what
    :func:`write_image` writes into, for callers that write the blocks themselves
    (the command line's resumable runs).  Returns ``(blocks, target)``; the target
    writes whole chunks directly (:class:`~fftconv._io.zarr_direct.ChunkWriter`).
    """
    blocks, names = _zarr_blocks(array, dimension_names, ome, compression, chunks, shards)
    (target,) = _zarr_targets(path, [blocks], names, ome, 3, compression, chunks, shards)
    return blocks, ChunkWriter.of(target)


def _zarr_blocks(array, names, ome, compression, chunks, shards):
    """``array`` in blocks that are a zarr v3 output's stored chunks (or shards), and its
    dimension names, after checking the options."""
    names = _names(names, array.ndim)
    if ome is not None:
        names = _ome_names(ome, array.shape, names, ".zarr")
    _codec(".zarr", compression, 3, chunks, shards)
    stored = _stored_chunks(array, chunks, shards, 3)
    return on_a_grid(array if stored is None else array.rechunk(stored)), names


def _codec(kind: str, compression, fmt: int, chunks, shards):
    """The format's codec for ``compression``; chunks and shards for zarr outputs only."""
    if kind != ".zarr" and (chunks is not None or shards is not None):
        raise ValueError("chunks= and shards= are a zarr output's")
    if kind == ".zarr":
        return zarr_codec(compression, fmt)
    if kind in (".npy", ".fits"):
        if compression not in (None, "none"):
            raise ValueError(f"compression={compression!r}: a {kind} output is not "
                             "compressed")
        return None
    return tiff_codec(compression)


def _stored_chunks(array, chunks, shards, fmt: int):
    """The blocks to write: the shards (each written whole by one task), else the chunks."""
    if shards is not None:
        if fmt != 3:
            raise ValueError("shards= needs a zarr v3 output (this group is zarr v2)")
        if chunks is None:
            raise ValueError("shards= needs chunks=: a shard holds whole chunks")
        return _normalized(shards, array.ndim, "shards")
    return None if chunks is None else _normalized(chunks, array.ndim, "chunks")


def _normalized(sides, ndim: int, name: str) -> tuple[int, ...]:
    sides = (int(sides),) * ndim if np.ndim(sides) == 0 else tuple(int(n) for n in sides)
    if len(sides) != ndim or min(sides) < 1:
        raise ValueError(f"{name}={sides!r}: one positive side per axis of the {ndim}-D array")
    return sides


def _zarr_targets(tmp: Path, levels: list, names, ome: dict | None, fmt: int,
                  compression: str | None = None, chunks=None, shards=None) -> list:
    """The zarr arrays at ``tmp`` to store ``levels`` in: one array, or an OME-Zarr group's.

    One array is zarr format ``fmt``; v2 has no ``dimension_names`` and keeps
    them where xarray looks, in ``_ARRAY_DIMENSIONS``.  An OME-Zarr image's
    format is its NGFF version's.  With ``shards``, the full resolution's
    blocks are its shards, of ``chunks``; coarser levels are not sharded.
    """
    import zarr

    array = levels[0]
    sharding = {} if shards is None else {
        "chunks": _normalized(chunks, array.ndim, "chunks"), "shards": array.chunksize}
    layout = {"shape": array.shape, "dtype": array.dtype, "chunks": array.chunksize,
              **sharding}
    if ome is None and fmt == 2:
        return [zarr.create_array(str(tmp), zarr_format=2,
                                  compressors=zarr_codec(compression, 2),
                                  attributes={"_ARRAY_DIMENSIONS": list(names)} if names else None,
                                  **layout)]
    if ome is None:
        return [zarr.create_array(str(tmp), compressors=zarr_codec(compression),
                                  dimension_names=names, **layout)]
    dataset = {"coordinateTransformations": [{"type": "scale", "scale": [1.0] * array.ndim}],
               **ome["datasets"][0]}  # NGFF requires a level's scale: 1 when none is given
    entry = {**{k: v for k, v in ome.items() if k != "version"},
             "datasets": [dataset, *ome["datasets"][1:]]}
    if ome.get("version") == "0.4":  # NGFF 0.4: zarr v2, the version in the entry
        if shards is not None:
            raise ValueError("shards= needs a zarr v3 output; NGFF 0.4 is zarr v2")
        group = zarr.create_group(str(tmp), zarr_format=2,
                                  attributes={"multiscales": [{"version": "0.4", **entry}]})
        options = {"compressors": zarr_codec(compression, 2)}
    else:
        group = zarr.create_group(str(tmp), attributes={"ome": {"version": "0.5",
                                                               "multiscales": [entry]}})
        options = {"compressors": zarr_codec(compression), "dimension_names": names}
    return [group.create_array(str(d["path"]).strip("/"), shape=level.shape, dtype=level.dtype,
                               chunks=level.chunksize, **(sharding if i == 0 else {}),
                               **options)
            for i, (d, level) in enumerate(zip(entry["datasets"], levels))]


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
        return [created(tifffile.memmap(tmp, shape=array.shape, dtype=array.dtype, **layout))]
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
    if kind in (".npy", ".fits"):
        raise ValueError("ome= describes an OME-Zarr image or an OME-TIFF; the output is a "
                         f"{kind} file")
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


def _fits(entry: dict, shape, kind: str) -> bool:
    """Whether an entry that came with the data (not the caller's ``ome=``) describes it."""
    try:
        _ome_names(entry, tuple(shape), None, kind)
    except ValueError:
        return False
    return True


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
