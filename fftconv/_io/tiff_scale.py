"""A TIFF's physical pixel sizes as an OME-Zarr (NGFF) entry, and an entry's as OME-TIFF's.

Microscopes write the size of a pixel into their TIFFs two ways, both read:

- OME-TIFF: ``PhysicalSizeX``, ``PhysicalSizeY``, ``PhysicalSizeZ`` (in OME's
  unit symbols, ``µm`` unless the ``...Unit`` attribute says otherwise) and
  ``TimeIncrement`` (``s``) of the first image's ``Pixels``;
- ImageJ: the ``XResolution`` and ``YResolution`` tags (pixels per unit) and
  the description's ``spacing`` (z) and ``finterval`` (t, seconds), in its
  ``unit``.  An image without a unit, or in ``pixel``, is uncalibrated; one in
  a unit NGFF does not name keeps its sizes, without the unit.

A plain TIFF's resolution tags are not read: most writers leave 72 dpi there,
which is no pixel size.  Either way the sizes become an NGFF multiscale entry
like an OME-Zarr input's (:func:`fftconv._io.ome.source_metadata`), with the
axes named and typed by tifffile's letters (``x``, ``y``, ``z`` space, ``c``
channel, ``t`` time) and the units in NGFF's names (``micrometer``).  Such an
entry is written back to a TIFF as OME-TIFF metadata (:func:`ome_tiff_metadata`),
scale only: OME-TIFF has no origin to move.

An OME-TIFF pyramid (the reduced images of its SubIFDs) states the shapes of
its levels, not their sizes: each level whose shape is the one before's over
whole factors (rounded either way) gets a dataset of its own, its scale the
one before's times those factors, so that an output keeps the pyramid:
OME-Zarr's levels, or an OME-TIFF's reduced images.
"""

from __future__ import annotations

import itertools
import math
import os

from fftconv._io.pyramid import inline_scale, shape_ratio
from fftconv._io.units import LENGTHS, SYMBOLS, TIMES, unit_name

# The axis names NGFF gives a type by name (0.3 listed names only), which are also
# tifffile's and OME-TIFF's letters X, Y, Z, C, T.
AXIS_TYPES = {"x": "space", "y": "space", "z": "space", "c": "channel", "t": "time"}
_AXES = {name.upper(): (name, kind) for name, kind in AXIS_TYPES.items()}
# Where OME-TIFF's Pixels keeps each letter's size.
_OME_SIZES = {"X": ("PhysicalSizeX", "µm"), "Y": ("PhysicalSizeY", "µm"),
              "Z": ("PhysicalSizeZ", "µm"), "T": ("TimeIncrement", "s")}


def tiff_source(path: str | os.PathLike) -> tuple[str, dict, dict] | None:
    """The NGFF version, multiscale entry and dataset that a TIFF's pixel sizes make.

    Like :func:`fftconv._io.ome.source_metadata` for an OME-Zarr level (the
    first; a pyramid's others follow it); the version is 0.5.  An RGB(A)
    image's samples (``S``) are its channel axis, unless it also has a ``C``.
    None when the TIFF states no pixel size (or is unreadable), or its series
    has an axis other than X, Y, Z, C and T.
    """
    import tifffile

    try:
        with tifffile.TiffFile(os.fspath(path)) as tif:
            levels = tif.series[0].levels  # the series open_image reads, at level 0
            letters = levels[0].axes
            shapes = [level.shape for level in levels]
            sizes = (_ome_sizes(tif.ome_metadata) if tif.is_ome
                     else _imagej_sizes(tif) if tif.is_imagej else {})
    except Exception:  # unreadable metadata: as if it said nothing (the read itself reports)
        return None
    if "S" in letters and "C" not in letters:  # a slide's or a photo's RGB: its channels
        letters = letters.replace("S", "C")
    if not sizes or any(letter not in _AXES for letter in letters):
        return None
    axes = []
    for letter in letters:
        name, kind = _AXES[letter]
        unit = sizes.get(letter, (1.0, None))[1]
        axes.append({"name": name, "type": kind, **({"unit": unit} if unit else {})})
    scales = [[sizes.get(letter, (1.0, None))[0] for letter in letters]]
    for finer, coarser in itertools.pairwise(shapes):  # a pyramid's levels, while whole
        ratio = shape_ratio(finer, coarser)
        if ratio is None:
            break
        scales.append([s * r for s, r in zip(scales[-1], ratio)])
    datasets = [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": s}]}
                for i, s in enumerate(scales)]
    return "0.5", {"axes": axes, "datasets": datasets}, datasets[0]


def _size(value: object) -> float | None:
    try:
        size = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return size if math.isfinite(size) and size > 0 else None


def _ome_sizes(xml: str | None) -> dict[str, tuple[float, str | None]]:
    import tifffile

    images = tifffile.xml2dict(xml or "").get("OME", {}).get("Image", {})
    pixels = (images[0] if isinstance(images, list) else images).get("Pixels", {})
    sizes = {}
    for letter, (key, default) in _OME_SIZES.items():
        size = _size(pixels.get(key))
        if size is not None:
            table = TIMES if letter == "T" else LENGTHS
            sizes[letter] = (size, unit_name(pixels.get(key + "Unit", default), table))
    return sizes


def _imagej_sizes(tif) -> dict[str, tuple[float, str | None]]:
    meta = tif.imagej_metadata or {}
    named = meta.get("unit")
    if not isinstance(named, str) or named.strip().lower() in ("", "pixel", "pixels"):
        return {}  # ImageJ's uncalibrated image
    unit = unit_name(named, LENGTHS)  # None for one NGFF has no name for: sizes without a unit
    per_x, per_y = tif.pages.first.get_resolution()  # pixels per unit, 1 when absent
    sizes = {}
    for letter, size in (("X", 1 / per_x if per_x else None), ("Y", 1 / per_y if per_y else None),
                         ("Z", meta.get("spacing"))):
        if _size(size) is not None:
            sizes[letter] = (_size(size), unit)
    if _size(meta.get("finterval")) is not None:
        sizes["T"] = (_size(meta["finterval"]), unit_name(meta.get("tunit", "s"), TIMES))
    return sizes


def ome_tiff_letters(entry: dict, shape: tuple[int, ...] | None = None) -> str | None:
    """The tifffile axis letters of an NGFF entry's axes, where OME-TIFF can write them.

    OME-TIFF knows X, Y, Z, C and T, each once, and ends with Y, X; or, for an
    array of ``shape`` with 3 or 4 channels last, with Y, X and the RGB(A)
    samples S (a slide scan's or a photo's layout, as :func:`tiff_source`
    reads it).  None otherwise.

    Examples
    --------
    >>> entry = {"axes": [{"name": "y"}, {"name": "x"}, {"name": "c"}]}
    >>> ome_tiff_letters(entry, (60, 80, 3)), ome_tiff_letters(entry, (60, 80, 2))
    ('YXS', None)
    """
    letters = {name: letter for letter, (name, _) in _AXES.items()}
    found = "".join(letters.get(str(axis.get("name", "")).lower(), "?")
                    for axis in entry.get("axes", ()))
    if "?" in found or len(set(found)) != len(found):
        return None
    if found.endswith("YXC") and shape is not None and shape[-1] in (3, 4):
        found = found[:-1] + "S"
    return found if found.endswith(("YX", "YXS")) else None


def ome_tiff_metadata(entry: dict, shape: tuple[int, ...] | None = None) -> dict | None:
    """tifffile's ``imwrite`` keywords for an OME-TIFF with ``entry``'s axes and pixel sizes.

    ``entry`` is an NGFF multiscale entry as :func:`fftconv.write_image` takes
    (``ome=``) for an array of ``shape``; the sizes are its dataset's ``scale``
    with its axes' units.  None when OME-TIFF cannot state its axes
    (:func:`ome_tiff_letters`).
    """
    letters = ome_tiff_letters(entry, shape)
    if letters is None:
        return None
    scale = inline_scale(entry["datasets"][0], len(letters)) or [1.0] * len(letters)
    metadata: dict = {"axes": letters}
    for letter, axis, size in zip(letters, entry["axes"], scale):
        if letter in _OME_SIZES and _size(size) is not None:
            key, _ = _OME_SIZES[letter]
            metadata[key] = float(size)
            if axis.get("unit") in SYMBOLS:
                metadata[key + "Unit"] = SYMBOLS[axis["unit"]]
    photometric = "rgb" if letters.endswith("S") else "minisblack"
    return {"ome": True, "photometric": photometric, "metadata": metadata}
