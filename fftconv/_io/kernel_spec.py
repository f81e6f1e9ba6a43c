"""The command line's KERNEL: an array file or a named kernel, in any number of dimensions.

``gaussian:sigma=S``, ``disk:radius=R`` (a ball in 3-D) and ``box:size=S``:
:mod:`fftconv.kernels`' own, each summing to 1 (the Gaussian is
``scipy.ndimage.gaussian_filter``'s).  One value gives the same extent on every axis;
comma-separated values give one per axis (``gaussian:sigma=1,2,2`` for a
``(z, y, x)`` stack sampled coarser along z) and set the dimensions.

A value is in pixels, or in the unit written after it (``gaussian:sigma=0.5um``,
``disk:radius=2µm,300nm,300nm``, ``box:size=2s`` along a time axis): the
image's pixel sizes (:func:`fftconv._io.ome.pixel_sizes`) turn it into pixels
along each axis, so one physical extent makes the right anisotropic kernel for
a stack sampled coarser along z.  A box's size in pixels is then rounded to
the nearest whole pixel (halves up, at least one).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fftconv._core import kernels
from fftconv._core.settings import half_the_memory
from fftconv._io.formats import FORMATS, InputError
from fftconv._io.read import open_file
from fftconv._io.units import convert, unit_name

KERNEL_SPEC = re.compile(r"^(gaussian|disk|box):(\w+)=(.*)$")
# A number, then a unit or nothing: 0.5, 1e-3, 0.5um, 300 nm.
VALUE = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")

# One axis's pixel: the axis's name, its size, and the NGFF unit of that size (or None).
PixelSize = tuple[str, float, "str | None"]


NAMED = {"gaussian": ("sigma", kernels.gaussian), "disk": ("radius", kernels.disk),
         "box": ("size", kernels.box)}


@dataclasses.dataclass(frozen=True)
class NamedKernel:
    """A named kernel as the command line spells it, before its extents are in pixels.

    Examples
    --------
    >>> found = parse_kernel("gaussian:sigma=0.5um,0.1um")
    >>> found.ndim, found.physical
    (2, True)
    >>> found.pixels([("y", 0.25, "micrometer"), ("x", 50.0, "nanometer")])
    (2.0, 2.0)
    """

    spec: str
    name: str  # gaussian, disk or box
    extents: tuple[tuple[float, str | None], ...]  # per axis: a value, its NGFF unit or None

    @property
    def ndim(self) -> int:
        return len(self.extents)

    @property
    def parameter(self) -> str:
        return NAMED[self.name][0]

    @property
    def physical(self) -> bool:
        """Whether a value has a unit, so that the image's pixel sizes are needed."""
        return any(unit is not None for _, unit in self.extents)

    def pixels(self, sizes: Sequence[PixelSize] | None = None) -> tuple[float, ...]:
        """Each axis's extent in pixels; ``sizes``: the pixel of each kernel axis.

        A box's sizes are whole pixels.
        """
        found = tuple(value if unit is None else self._in_pixels(value, unit, sizes, i)
                      for i, (value, unit) in enumerate(self.extents))
        if self.name != "box":
            return found
        if any(unit is None and n != int(n) for n, (_, unit) in zip(found, self.extents)):
            raise InputError(f"kernel {self.spec!r} needs integer sizes in pixels (or a unit, "
                             "as size=1.5um)")
        return tuple(float(max(1, math.floor(n + 0.5))) for n in found)  # halves round up

    def _in_pixels(self, value: float, unit: str, sizes, axis: int) -> float:
        given = f"{value:g} {unit}"
        if sizes is None:
            raise InputError(f"kernel {self.spec!r} gives {given}, and the input states no "
                             "pixel size (OME-Zarr, OME-TIFF, ImageJ TIFF do); give it in "
                             "pixels")
        name, size, size_unit = sizes[axis]
        if size_unit is None:
            raise InputError(f"kernel {self.spec!r} gives {given}, and the input's axis "
                             f"{name} states its pixel size without a unit")
        converted = convert(value, unit, size_unit)
        if converted is None:
            raise InputError(f"kernel {self.spec!r} gives {given} for the input's axis {name}, "
                             f"whose pixels are in {size_unit}")
        return converted / size

    def shape(self, sizes: Sequence[PixelSize] | None = None) -> tuple[int, ...]:
        """The kernel's shape, known without building it."""
        return self._shape(self.pixels(sizes))

    def _shape(self, extents: tuple[float, ...]) -> tuple[int, ...]:
        if self.name == "gaussian":  # scipy.ndimage.gaussian_filter's radius
            return tuple(2 * int(4 * s + 0.5) + 1 for s in extents)
        if self.name == "disk":
            return tuple(2 * math.ceil(r) + 1 for r in extents)
        return tuple(int(n) for n in extents)

    def array(self, sizes: Sequence[PixelSize] | None = None,
              memory: int | None = None) -> np.ndarray:
        """The kernel, summing to 1, in float32.

        A box is one value broadcast over its shape (read-only, every stride 0):
        nothing is built, and the engine runs it by running sums however large.
        Another kernel that would take more than ``memory`` bytes to build
        (default: half this machine's memory) is refused with an
        :class:`InputError` before anything is allocated: ``disk:radius=1e9``
        asked for 15 GiB and was killed.

        Examples
        --------
        >>> box = parse_kernel("box:size=20000").array()
        >>> box.shape, box.strides, float(box[0, 0]) * 20000**2
        ((20000, 20000), (0, 0), 1.0)
        """
        extents = self.pixels(sizes)
        shape = self._shape(extents)
        if self.name == "box":
            return np.broadcast_to(np.float32(kernels.box(shape).flat[0]), shape)  # one value
        need = math.prod(shape) * 8 * (3 if self.name == "disk" else 1)  # float64 temporaries
        budget = memory if memory is not None else half_the_memory()
        if need > budget:
            raise InputError(f"kernel {self.spec!r} would be {' x '.join(map(str, shape))} "
                             f"pixels, {need / 2**30:.3g} GiB to build: more than the "
                             f"{budget / 2**30:.3g} GiB allowed; give a smaller "
                             f"{self.parameter}")
        return NAMED[self.name][1](extents).astype(np.float32)


def _extent(spec: str, expected: str, text: str) -> tuple[float, str | None]:
    match = VALUE.match(text)
    if match is None:
        raise InputError(f"kernel {spec!r}: {text!r} is not a number (with a unit or none) "
                         "or a list of them")
    value, symbol = float(match[1]), match[2]
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"kernel {spec!r}: {expected} must be a positive number")
    unit = unit_name(symbol) if symbol else None
    if symbol and unit is None:
        raise InputError(f"kernel {spec!r}: {symbol!r} is not a unit of length or time "
                         "(nm, um, mm, ... s, ms, ...)")
    return value, unit


def _extents(spec: str, expected: str, text: str, ndim: int | None) -> tuple:
    extents = tuple(_extent(spec, expected, part) for part in text.split(","))
    if ndim is None:
        ndim = len(extents) if len(extents) > 1 else 2
    if len(extents) == 1:
        return extents * ndim
    if len(extents) != ndim:
        raise InputError(f"kernel {spec!r} gives {len(extents)} values of {expected} for "
                         f"{ndim} axes")
    return extents


def parse_kernel(spec: str, ndim: int | None = None) -> np.ndarray | NamedKernel:
    """The kernel ``spec`` names: a file's array (``.npy``, ``.tif``/``.tiff``, ``.zarr``, as
    :func:`fftconv.open_image` reads them), or a :class:`NamedKernel`.

    A named kernel has ``ndim`` dimensions, or as many as it gives values, or 2.
    """
    match = KERNEL_SPEC.match(spec)
    if match:
        name, parameter, text = match.groups()
        expected, _ = NAMED[name]
        if parameter != expected:
            raise InputError(f"kernel {spec!r}: {name} takes {expected}=..., not {parameter}=")
        return NamedKernel(spec, name, _extents(spec, expected, text, ndim))
    path = Path(spec)
    if ":" in spec and path.suffix.lower() not in FORMATS:
        raise InputError(f"kernel {spec!r} is neither a file ({', '.join(FORMATS)}) nor one "
                         "of gaussian:sigma=S, disk:radius=R, box:size=S")
    lazy = open_file(path, role="kernel")  # a measured PSF comes as a TIFF or OME-Zarr too
    try:
        kernel = np.asarray(lazy.compute())
    except Exception as err:  # a tile that does not decode
        raise InputError(f"kernel {spec!r} could not be read: {err}") from None
    return _finite(kernel, spec)


def _finite(kernel: np.ndarray, spec: str) -> np.ndarray:
    """``kernel``, unless it holds NaN or inf: every output would be NaN (SPEC §1.4)."""
    if kernel.dtype.kind in "fc":
        bad = int(np.count_nonzero(~np.isfinite(kernel)))
        if bad:
            raise InputError(f"kernel {spec!r} has {bad} non-finite value"
                             f"{'s' if bad > 1 else ''} (NaN or inf): every output would be NaN")
    return kernel


def check_sampling(spec: str, kernel: Sequence[PixelSize] | None,
                   image: Sequence[PixelSize] | None) -> None:
    """Refuse a kernel file whose pixel differs from the image's along an axis that both
    give a size and a unit for (``kernel``, ``image``: one :data:`PixelSize` per kernel axis).

    A PSF measured at 0.1 µm would blur an image of 0.065 µm pixels 1.5 times too
    little, without a sign; an axis that either leaves without a unit is not compared.

    Examples
    --------
    >>> nm = [("y", 65.0, "nanometer"), ("x", 65.0, "nanometer")]
    >>> check_sampling("psf.tif", nm, [("y", 0.065, "micrometer")] * 2)
    >>> check_sampling("psf.tif", nm, [("y", 0.1, "micrometer")] * 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fftconv._io.formats.InputError: kernel 'psf.tif' has pixels of 65 nanometer along y, ...
    """
    for (name, size, unit), (_, image_size, image_unit) in zip(kernel or (), image or ()):
        if unit is None or image_unit is None:
            continue
        converted = convert(size, unit, image_unit)
        # Metadata round-trips through text: 0.0650000001 µm is 65 nm.
        if converted is None or not math.isclose(converted, image_size, rel_tol=1e-4):
            raise InputError(f"kernel {spec!r} has pixels of {size:g} {unit} along {name}, "
                             f"the input {image_size:g} {image_unit}: resample it to the "
                             "input's pixels (or save it as .npy to use it as it is)")


def load_kernel(spec: str, ndim: int | None = None,
                sizes: Sequence[PixelSize] | None = None) -> np.ndarray:
    """The kernel ``spec`` names, as an array (a named one in float32, summing to 1).

    ``sizes`` gives the pixel of each of a named kernel's axes, for values
    with a unit (:meth:`NamedKernel.pixels`).

    Examples
    --------
    >>> load_kernel("box:size=3").shape
    (3, 3)
    >>> load_kernel("disk:radius=1um,1um", sizes=[("y", 0.5, "micrometer")] * 2).shape
    (5, 5)
    """
    found = parse_kernel(spec, ndim)
    return found.array(sizes) if isinstance(found, NamedKernel) else found
