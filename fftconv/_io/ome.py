"""OME-Zarr (NGFF) image metadata: an input's, carried to a convolved output.

A convolved image covers the input's field of view at the input's sampling, so
its OME-Zarr output keeps the input's axes (names, types, units) and the scale
of the level read.  Only the origin moves, by the mode's window: a ``full``
result starts ``(K - 1) // 2`` pixels before the input along each convolved
axis, a ``valid`` one ``K // 2`` after (SPEC §1.1's crops); ``same`` keeps it.

The output has that level and the coarser ones that follow it in the input
(:mod:`fftconv._io.pyramid`), written in the input's NGFF version where that is
0.4 (zarr v2, what many readers still expect) or 0.5 (zarr v3); older versions
(names only, no scale) become 0.4 with axis types from the names.
Display settings (``omero``) are not carried: convolution changes the values
they were chosen for.  A TIFF that states its pixel sizes (OME-TIFF, ImageJ)
gives an entry of its own (:mod:`fftconv._io.tiff_scale`), carried the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fftconv._core.shapes import align_kernel, normalize_axes, output_window
from fftconv._io.formats import file_format
from fftconv._io.pyramid import first_empty, whole_ratios
from fftconv._io.read import multiscale, series
from fftconv._io.tiff_scale import AXIS_TYPES, tiff_source
from fftconv._io.urls import is_remote, local


def source_metadata(path: str | os.PathLike) -> tuple[str, dict, dict] | None:
    """The version, multiscale entry and dataset of the OME-Zarr level ``path`` opens.

    ``path`` is an image group (its first level is read) or one level of it
    (``image.zarr/1``); or a TIFF, whose pixel sizes make an entry of their own
    (:func:`fftconv._io.tiff_scale.tiff_source`).  None when ``path`` is neither
    an OME-Zarr image nor a TIFF that states its pixel size, or its metadata is
    unreadable.
    """
    import zarr

    if is_remote(path):  # a zarr store reached through fsspec
        location = str(path).rstrip("/")
        parent, leaf = location.rsplit("/", 1)
    else:
        path = Path(local(path))
        kind = file_format(path, "input")
        if kind == ".tif":
            return tiff_source(path)
        if kind != ".zarr":
            return None
        location, parent, leaf = str(path), str(path.parent), path.name
    try:
        node = series(zarr.open(location, mode="r"))
        group, name = (node, None) if isinstance(node, zarr.Group) else (
            zarr.open_group(parent, mode="r"), leaf)
        scale = multiscale(group)
    except Exception:  # a plain array, a missing or foreign parent: no OME metadata
        return None
    datasets = scale.get("datasets") if scale else None
    if not datasets:
        return None
    level = datasets[0] if name is None else next(
        (d for d in datasets if d.get("path") == name), None)
    if level is None:
        return None
    attrs = dict(group.attrs)
    version = str(attrs["ome"].get("version", "0.5") if "ome" in attrs
                  else scale.get("version", "0.4"))
    return version, scale, level


def output_metadata(source: tuple[str, dict, dict], shift: Sequence[int],
                    shape: Sequence[int] | None = None) -> dict | None:
    """The multiscale entry of a result whose pixel 0 is input pixel ``shift``.

    ``source`` is :func:`source_metadata`'s.  The entry is what
    :func:`fftconv.write_image` takes as ``ome=``: the input's axes, a
    dataset ``"0"`` with the level's scale and its translation moved by
    ``shift`` pixels, and, given the result's ``shape``, one coarser dataset
    (``"1"``, ``"2"``...) for each level that follows the one read in the
    input, as long as each is a whole multiple of the last and has pixels
    (:mod:`fftconv._io.pyramid`).  None when the level's transformations are not
    inline scale and translation vectors of one value per axis.
    """
    version, scale, level = source
    ndim = len(shift)
    axes = _typed_axes(scale.get("axes"), ndim)
    transforms = _level_transforms(level, ndim)
    if axes is None or transforms is None:
        return None
    factors, origin = transforms
    moved = [o + f * s for o, f, s in zip(origin, factors, shift)]
    datasets = [{"path": "0", "coordinateTransformations": _placed(factors, moved)}]
    for ratio in _output_ratios(scale.get("datasets") or [], level, factors, shape):
        # A coarse pixel is the mean of `ratio` finer ones, centred among them.
        moved = [o + f * (r - 1) / 2 for o, f, r in zip(moved, factors, ratio)]
        factors = [f * r for f, r in zip(factors, ratio)]
        datasets.append({"path": str(len(datasets)),
                         "coordinateTransformations": _placed(factors, moved)})
    older = version in ("0.1", "0.2", "0.3", "0.4")  # zarr v2's NGFF; 0.5 on is zarr v3's
    entry = {"version": "0.4" if older else "0.5", "axes": axes, "datasets": datasets}
    for key in ("name", "coordinateTransformations"):  # the whole image's, as they were
        if key in scale:
            entry[key] = scale[key]
    return entry


def pixel_sizes(source: tuple[str, dict, dict] | None,
                ndim: int) -> list[tuple[str, float, str | None]] | None:
    """Per axis of the level ``source`` describes (:func:`source_metadata`), its pixel:
    the axis's name, the pixel's size, and the axis's unit (None if it states none).

    The size is the level's scale times the image's (a multiscale's own
    ``coordinateTransformations`` apply to every level).  None without an
    entry, or where those are not inline vectors of one value per axis.

    Examples
    --------
    >>> axes = [{"name": "z", "type": "space", "unit": "micrometer"},
    ...         {"name": "y", "type": "space", "unit": "micrometer"}]
    >>> level = {"path": "0", "coordinateTransformations": [{"type": "scale",
    ...                                                      "scale": [2.0, 0.5]}]}
    >>> image = [{"type": "scale", "scale": [1.0, 0.5]}]
    >>> pixel_sizes(("0.5", {"axes": axes, "datasets": [level],
    ...                      "coordinateTransformations": image}, level), 2)
    [('z', 2.0, 'micrometer'), ('y', 0.25, 'micrometer')]
    """
    if source is None:
        return None
    _, scale, level = source
    axes = _typed_axes(scale.get("axes"), ndim)
    factors = _level_transforms(level, ndim)
    image = _level_transforms(scale, ndim)  # a level's fields, one level up
    if axes is None or factors is None or image is None:
        return None
    return [(str(axis.get("name", i)), f * g, axis.get("unit"))
            for i, (axis, f, g) in enumerate(zip(axes, factors[0], image[0]))]


def _placed(factors: list, origin: list) -> list[dict]:
    placed = [{"type": "scale", "scale": factors}]
    if any(origin):
        placed.append({"type": "translation", "translation": origin})
    return placed


def _output_ratios(datasets: list, level: dict, factors: list,
                   shape: Sequence[int] | None) -> list[list[int]]:
    """Per input level after ``level``, its whole factors over the one before: up to one
    that is not such a multiple, or that a ``shape`` result would have no pixel of."""
    if shape is None or level not in datasets:
        return []
    ratios = whole_ratios(factors, datasets[datasets.index(level) + 1:], len(shape))
    empty = first_empty(shape, ratios)
    return ratios if empty is None else ratios[:empty[0]]


def ngff_order(axes: Sequence[dict]) -> bool:
    """Whether ``axes`` are in the order NGFF requires of an image.

    Two or three of type space, last; before them at most one time axis, first,
    and one other (channel, or a custom type).
    """
    kinds = [axis.get("type") for axis in axes]
    space = next((i for i, k in enumerate(reversed(kinds)) if k != "space"), len(kinds))
    rest = kinds[:len(kinds) - space]  # what comes before the trailing space axes
    if not 2 <= space <= 3 or "space" in rest or rest.count("time") > 1:
        return False
    if "time" in rest and rest[0] != "time":
        return False
    return len(rest) - ("time" in rest) <= 1


def _typed_axes(axes, ndim: int) -> list[dict] | None:
    if not axes or len(axes) != ndim:
        return None
    if all(isinstance(a, dict) for a in axes):
        return [dict(a) for a in axes]
    if all(isinstance(a, str) for a in axes):  # NGFF 0.3: names only; 0.4 on needs types
        return [{"name": a, **({"type": AXIS_TYPES[a.lower()]} if a.lower() in AXIS_TYPES
                               else {})} for a in axes]
    return None


def _level_transforms(level: dict, ndim: int) -> tuple[list, list] | None:
    """The level's scale and translation vectors (unit scale, zero origin when absent)."""
    factors, origin = [1.0] * ndim, [0.0] * ndim
    for transform in level.get("coordinateTransformations") or ():
        kind = transform.get("type")
        values = transform.get(kind) if kind in ("scale", "translation") else None
        if not isinstance(values, list) or len(values) != ndim or not all(
                isinstance(v, int | float) for v in values):
            return None  # by path, or a kind NGFF 0.5 does not list: not ours to recompute
        if kind == "scale":
            factors = list(values)
        else:
            origin = list(values)
    return factors, origin


def window_shift(image_shape: Sequence[int], kernel, axes, mode: str) -> list[int]:
    """Per image axis, the input pixel that the result's pixel 0 lies on.

    ``kernel`` and ``axes`` as :func:`fftconv.convolve` takes them.
    """
    ndim = len(image_shape)
    convolved = normalize_axes(axes, ndim, kernel.ndim)
    lengths = align_kernel(kernel, convolved, ndim).shape
    shift = [0] * ndim
    for ax in convolved:
        n, k = image_shape[ax], lengths[ax]
        shift[ax] = output_window(n, k, mode)[0] - output_window(n, k, "same")[0]
    return shift
