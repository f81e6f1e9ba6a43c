"""The command line's KERNEL: a ``.npy`` file or a named kernel, in any number of dimensions.

``gaussian:sigma=S``, ``disk:radius=R`` (a ball in 3-D) and ``box:size=S``,
each normalised to sum 1.  One value gives the same extent on every axis;
comma-separated values give one per axis (``gaussian:sigma=1,2,2`` for a
``(z, y, x)`` stack sampled coarser along z) and set the dimensions.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fftconv._io import InputError

NUMBER = r"[0-9.eE+-]+"
KERNEL_SPEC = re.compile(rf"^(gaussian|disk|box):(\w+)=({NUMBER}(?:,{NUMBER})*)$")


def _gaussian(sigmas: tuple[float, ...]) -> np.ndarray:
    """Sampled at the integers out to 4 σ on each axis: a product of 1-D Gaussians."""
    kernel = np.ones((), dtype=np.float64)
    for sigma in sigmas:
        radius = max(1, int(np.ceil(4 * sigma)))
        t = np.arange(-radius, radius + 1, dtype=np.float64)
        kernel = np.multiply.outer(kernel, np.exp(-0.5 * (t / sigma) ** 2))
    return kernel


def _disk(radii: tuple[float, ...]) -> np.ndarray:
    """The integer points of the ellipsoid ``Σ (xᵢ / rᵢ)² ≤ 1``: a disk, a ball."""
    grids = np.ogrid[tuple(slice(-int(np.ceil(r)), int(np.ceil(r)) + 1) for r in radii)]
    # The tolerance keeps points exactly on the rim, which rounding of (3/5)² + (4/5)² loses.
    return (sum((g / r) ** 2 for g, r in zip(grids, radii)) <= 1 + 1e-12).astype(np.float64)


def _box(sizes: tuple[float, ...]) -> np.ndarray:
    if any(n != int(n) for n in sizes):
        raise InputError(f"kernel box:size={','.join(f'{n:g}' for n in sizes)} needs "
                         "integer sizes")
    return np.ones(tuple(int(n) for n in sizes), dtype=np.float64)


NAMED = {"gaussian": ("sigma", _gaussian), "disk": ("radius", _disk), "box": ("size", _box)}


def _values(spec: str, expected: str, text: str, ndim: int | None) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"kernel {spec!r}: {text!r} is not a number or a list of them") \
            from None
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(f"kernel {spec!r}: {expected} must be a positive number")
    if ndim is None:
        ndim = len(values) if len(values) > 1 else 2
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise InputError(f"kernel {spec!r} gives {len(values)} values of {expected} for "
                         f"{ndim} axes")
    return values


def load_kernel(spec: str, ndim: int | None = None) -> np.ndarray:
    """The kernel ``spec`` names: a ``.npy`` file's array, or a named kernel (float32).

    A named kernel has ``ndim`` dimensions, or as many as it gives values, or 2.
    """
    match = KERNEL_SPEC.match(spec)
    if match:
        name, parameter, text = match.groups()
        expected, make = NAMED[name]
        if parameter != expected:
            raise InputError(f"kernel {spec!r}: {name} takes {expected}=..., not {parameter}=")
        kernel = make(_values(spec, expected, text, ndim))
        return (kernel / kernel.sum()).astype(np.float32)
    if ":" in spec and not spec.endswith(".npy"):
        raise InputError(f"kernel {spec!r} is neither a .npy file nor one of "
                         "gaussian:sigma=S, disk:radius=R, box:size=S")
    path = Path(spec)
    if not path.exists():
        raise InputError(f"kernel {spec!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:
        raise InputError(f"kernel {spec!r} could not be read: {err}") from None
