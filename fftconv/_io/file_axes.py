"""Which axes of an image file are space, by the file's own metadata.

The command line's default ``--axes`` when the kernel has fewer dimensions
than the image: a microscope's OME-Zarr ``(c, z, y, x)`` or OME-TIFF ``CZYX``
stack, an RGB TIFF ``YXS``.  Each format states its axes its own way:

- OME-Zarr (NGFF 0.4, 0.5): the ``multiscales`` axes, each with a ``type``
  (``"space"``, ``"channel"``, ``"time"``); NGFF 0.3 names only, x, y and z
  being space;
- a zarr v3 array: its ``dimension_names``; a zarr v2 array written by xarray:
  its ``_ARRAY_DIMENSIONS`` attribute (names x, y and z are space);
- a TIFF: tifffile's axes letters of the series read (``X``, ``Y``, ``Z`` are
  space; ``C``, ``T``, ``S`` for RGB samples, ``Q`` unknown … are not);
- a ``.npy`` file states none.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fftconv._io.formats import InputError, file_format
from fftconv._io.ome import source_metadata
from fftconv._io.urls import is_remote, local

SPACE_NAMES = frozenset("xyz")


def axis_names(path: str | os.PathLike, ndim: int) -> tuple[tuple[str, bool], ...] | None:
    """Each axis's name and whether it is space, or None when the file does not say.

    Metadata that does not give exactly ``ndim`` axes is not trusted (None).
    """
    remote = is_remote(path)
    path = path if remote else Path(local(path))
    kind = ".zarr" if remote else file_format(path, "input")
    try:
        axes = _zarr_axes(path) if kind == ".zarr" else _tiff_axes(path) if kind == ".tif" \
            else None
    except Exception:  # unreadable metadata: as if it said nothing (the read itself reports)
        return None
    return axes if axes is not None and len(axes) == ndim else None


def _named(names: Sequence) -> tuple[tuple[str, bool], ...] | None:
    if not names or any(not isinstance(n, str) for n in names):
        return None
    return tuple((n, n.lower() in SPACE_NAMES) for n in names)


def _ome_axis(axis: dict) -> tuple[str, bool]:
    name = str(axis.get("name", "?"))
    return name, axis["type"] == "space" if "type" in axis else name.lower() in SPACE_NAMES


def _ome_axes(scale: dict) -> tuple[tuple[str, bool], ...] | None:
    axes = scale.get("axes")
    if axes and all(isinstance(a, dict) for a in axes):  # NGFF 0.4 on: each has a type
        return tuple(_ome_axis(a) for a in axes)
    return _named(axes)  # NGFF 0.3: names only


def _zarr_axes(path: Path) -> tuple[tuple[str, bool], ...] | None:
    """An array's own dimension names, else the axes of the OME-Zarr image it is in."""
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        names = getattr(node.metadata, "dimension_names", None) or node.attrs.get(
            "_ARRAY_DIMENSIONS")
        if names and any(names):
            return _named(list(names))
    found = source_metadata(path)  # a group, or a level of one as image.zarr/0
    return _ome_axes(found[1]) if found else None


def _tiff_axes(path: Path) -> tuple[tuple[str, bool], ...] | None:
    import tifffile

    with tifffile.TiffFile(str(path)) as tif:
        letters = tif.series[0].levels[0].axes  # the series and level open_image reads
    return tuple((letter, letter in "XYZ") for letter in letters)


def default_axes(named: tuple[tuple[str, bool], ...] | None, image_ndim: int,
                 kernel_ndim: int) -> tuple[tuple[int, ...], str]:
    """The axes a kernel of fewer dimensions than the image runs over, and why.

    They are the space axes of ``named`` (:func:`axis_names`), when it has as
    many as the kernel has dimensions.  Otherwise
    :class:`~fftconv._io.formats.InputError`, naming the axes the file states, if any:
    the choice is the user's (``--axes``).
    """
    wanted = f"kernel has {kernel_ndim} dimensions, the image {image_ndim}"
    if named is None:
        raise InputError(f"{wanted}; name the image's axes to convolve with --axes")
    space = tuple(i for i, (_, is_space) in enumerate(named) if is_space)
    listed = ", ".join(name for name, _ in named)
    if len(space) != kernel_ndim:
        raise InputError(f"{wanted} ({listed}), {len(space)} of them space; name the image's "
                         "axes to convolve with --axes")
    names = ", ".join(named[i][0] for i in space)
    return space, f"axes {','.join(map(str, space))} ({names}), the space axes of ({listed})"
