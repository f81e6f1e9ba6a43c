"""An image file's data with its axes, pixel sizes, units and origin, in Python.

:func:`open_image` with ``metadata=True`` gives an :class:`Image`: the lazy
data and what the file states of each axis (OME-Zarr, OME-TIFF, ImageJ TIFF,
a zarr array's dimension names).  :func:`fftconv.write_image` takes an
``Image`` back, or an ``xarray.DataArray`` (:meth:`Image.to_xarray`; its
evenly spaced coordinates are the pixel sizes and the origin), so a Python
round trip keeps the OME-Zarr / OME-TIFF metadata as the command line does.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from fftconv._core.lazy import is_dataarray
from fftconv._io.file_axes import axis_names
from fftconv._io.ome import output_metadata, pixel_sizes, source_metadata
from fftconv._io.read import open_file
from fftconv._io.tiff_scale import AXIS_TYPES


@dataclasses.dataclass(frozen=True)
class Image:
    """An image's data and, per axis, what its file states.

    Attributes
    ----------
    data : dask.array.Array
        Lazy; nothing is read until it is computed.
    axes : tuple of str
        Each axis's name (``"c", "z", "y", "x"``); ``"dim_0"``... where the file names none.
    scale : tuple of float
        Each axis's pixel size (1.0 where none is stated).
    units : tuple of str or None
        Each axis's unit (NGFF's names: ``"micrometer"``, ``"second"``), None where unstated.
    origin : tuple of float
        Where pixel 0 lies, per axis, in those units.
    ome : dict or None
        The OME-Zarr multiscale entry :func:`fftconv.write_image` takes as ``ome=``
        for data of this shape (with the file's coarser levels), or None.
    """

    data: object
    axes: tuple[str, ...]
    scale: tuple[float, ...]
    units: tuple[str | None, ...]
    origin: tuple[float, ...]
    ome: dict | None = None

    def with_data(self, data) -> Image:
        """This image's metadata on other data of the same shape (a ``same`` convolution)."""
        if tuple(data.shape) != tuple(self.data.shape):
            raise ValueError(f"data of shape {tuple(data.shape)} for an image of shape "
                             f"{tuple(self.data.shape)}; convolve with mode='same', or "
                             "use to_xarray() (whose coordinates follow any mode)")
        return dataclasses.replace(self, data=data)

    def to_xarray(self):
        """A ``DataArray``: dims are the axes, each spatial coordinate ``origin + i · scale``
        with its unit in the coordinate's ``attrs["units"]``; ``attrs["ome"]`` the entry."""
        import xarray as xr

        coords = {}
        for i, (name, size, unit, start) in enumerate(zip(self.axes, self.scale, self.units,
                                                          self.origin)):
            if unit is not None or size != 1.0 or start != 0.0:
                attrs = {"units": unit} if unit else {}
                coords[name] = (name, start + size * np.arange(self.data.shape[i]), attrs)
        return xr.DataArray(self.data, dims=self.axes, coords=coords,
                            attrs={"ome": self.ome} if self.ome else {})


def open_image(path: str | os.PathLike, chunks="auto", *, metadata: bool = False):
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
    metadata : bool
        Return an :class:`Image`: the array with its axes, pixel sizes, units
        and origin (``.to_xarray()`` makes it a labelled ``DataArray``).

    Returns
    -------
    dask.array.Array or Image
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
    >>> ome = {"axes": [{"name": "y", "type": "space", "unit": "micrometer"},
    ...                 {"name": "x", "type": "space", "unit": "micrometer"}],
    ...        "datasets": [{"path": "0", "coordinateTransformations": [
    ...            {"type": "scale", "scale": [0.5, 0.25]}]}]}
    >>> path = fftconv.write_image(np.ones((4, 6), np.float32),
    ...                            os.path.join(folder, "cells.zarr"), ome=ome)
    >>> cells = fftconv.open_image(path, metadata=True)
    >>> cells.axes, cells.scale, cells.units
    (('y', 'x'), (0.5, 0.25), ('micrometer', 'micrometer'))
    """
    data = open_file(path, chunks, "input")
    return describe(path, data) if metadata else data


def describe(path: str | os.PathLike, data) -> Image:
    """The :class:`Image` of ``data``, opened from ``path``."""
    ndim = data.ndim
    source = source_metadata(path) if Path(path).suffix.lower() != ".npy" else None
    sizes = pixel_sizes(source, ndim)
    named = axis_names(path, ndim)
    axes = tuple(n for n, _ in named) if named else tuple(f"dim_{i}" for i in range(ndim))
    if sizes is not None:
        axes = tuple(name for name, _, _ in sizes)
    scale = tuple(float(s) for _, s, _ in sizes) if sizes else (1.0,) * ndim
    units = tuple(u for _, _, u in sizes) if sizes else (None,) * ndim
    ome = output_metadata(source, [0] * ndim, data.shape) if source else None
    origin = (0.0,) * ndim
    if ome is not None:
        for transform in ome["datasets"][0]["coordinateTransformations"]:
            if transform["type"] == "translation":
                origin = tuple(float(t) for t in transform["translation"])
    return Image(data, axes, scale, units, origin, ome)


def from_labelled(value) -> tuple[object, list[str] | None, dict | None]:
    """``(data, dimension_names, ome)`` for :func:`fftconv.write_image` of an :class:`Image`
    or a ``DataArray``; other values as they are (no names, no entry)."""
    if isinstance(value, Image):
        return value.data, list(value.axes), value.ome
    if not is_dataarray(value):
        return value, None, None
    names = [str(d) for d in value.dims]
    return value.data, names, _dataarray_entry(value)


def _dataarray_entry(array) -> dict | None:
    """An NGFF entry from a DataArray's evenly spaced numeric coordinates (their step the
    pixel size, their first value the origin, ``attrs["units"]`` the unit); the axes'
    types from ``attrs["ome"]`` where it names them, else from their names.  None when no
    dim has such a coordinate."""
    known = {a.get("name"): a for a in ((array.attrs.get("ome") or {}).get("axes") or ())
             if isinstance(a, dict)}
    axes, scale, origin, placed = [], [], [], False
    for dim in array.dims:
        axis = dict(known.get(dim) or {"name": str(dim)})
        axis["name"] = str(dim)
        if "type" not in axis and str(dim).lower() in AXIS_TYPES:
            axis["type"] = AXIS_TYPES[str(dim).lower()]
        step, start = 1.0, 0.0
        coord = array.coords.get(dim)
        if coord is not None and coord.dtype.kind in "iuf" and coord.size >= 1:
            values = np.asarray(coord.values, dtype=np.float64)
            steps = np.diff(values)
            if values.size == 1 or np.allclose(steps, steps[0], rtol=1e-9):
                step = float(steps[0]) if values.size > 1 else 1.0
                start, placed = float(values[0]), True
                if coord.attrs.get("units"):
                    axis["unit"] = coord.attrs["units"]
        axes.append(axis)
        scale.append(step)
        origin.append(start)
    if not placed:
        return None
    transforms = [{"type": "scale", "scale": scale}]
    if any(origin):
        transforms.append({"type": "translation", "translation": origin})
    return {"version": "0.5", "axes": axes,
            "datasets": [{"path": "0", "coordinateTransformations": transforms}]}
