"""xarray DataArrays in, DataArrays out: dims, name, attrs and coordinates kept.

An operation given a ``DataArray`` runs on its data (a NumPy array, or a dask
array, which stays lazy) and wraps the result in a ``DataArray`` with the same
dims, name and attrs.  ``axes=`` may name dims; a kernel that is itself a
``DataArray`` names the dims it runs over.  Coordinates along a convolved dim
follow the output: kept where its length is the input's (``same``), the input
coordinate under each output sample where it is shorter (``valid``:
``x[K//2 : K//2 + N - K + 1]``), extended on both sides where it is longer
(``full``) when the coordinate is evenly spaced, and dropped with a warning
otherwise.  xarray is never imported here: a value can be a ``DataArray`` only
once xarray is loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from fftconv._core.lazy import is_dataarray


def dim_axes(image, axes) -> tuple[int, ...] | int | None:
    """``axes`` with dim names replaced by the image's axis numbers."""
    if axes is None:
        return None
    if isinstance(axes, str | int | np.integer):
        return _axis(image, axes)
    return tuple(_axis(image, a) for a in axes)


def _axis(image, axis) -> int:
    if isinstance(axis, str):
        if axis not in image.dims:
            raise ValueError(f"axes names dim {axis!r}, which the image does not have "
                             f"(its dims: {', '.join(map(repr, image.dims))})")
        return image.get_axis_num(axis)
    return int(axis)


def kernel_values(image, kernel, axes):
    """The kernel's data and the axes it runs over; a ``DataArray`` kernel's dims name them.

    Its dims are put in the image's order; with ``axes=None`` they are the
    convolved axes.
    """
    if not is_dataarray(kernel):
        return kernel, dim_axes(image, axes)
    missing = [d for d in kernel.dims if d not in image.dims]
    if missing:
        raise ValueError(f"the kernel's dims {', '.join(map(repr, missing))} are not the "
                         f"image's ({', '.join(map(repr, image.dims))})")
    ordered = [d for d in image.dims if d in kernel.dims]
    data = kernel.transpose(*ordered).data
    found = tuple(image.get_axis_num(d) for d in ordered)
    if axes is not None and tuple(sorted(np.atleast_1d(dim_axes(image, axes)))) != found:
        raise ValueError(f"axes={axes!r} and the kernel's dims {tuple(kernel.dims)} disagree")
    if len(ordered) == image.ndim:
        return data, None
    return data, found


def wrap(image, out, convolved: Sequence[int] | None):
    """``out`` (the result of an operation on ``image.data``) as a ``DataArray`` like ``image``."""
    import xarray as xr

    convolved = range(image.ndim) if convolved is None else convolved
    coords = {}
    for name, coord in image.coords.items():
        kept = _coordinate(image, out, name, coord, convolved)
        if kept is not None:
            coords[name] = kept
    return xr.DataArray(out, dims=image.dims, coords=coords, name=image.name,
                        attrs=dict(image.attrs))


def _coordinate(image, out, name, coord, convolved):
    """``coord`` for the output, or None (dropped, with a warning if it could not follow)."""
    changed = [d for d in coord.dims
               if image.get_axis_num(d) in convolved
               and out.shape[image.get_axis_num(d)] != image.sizes[d]]
    if not changed:
        return coord.variable
    if len(changed) > 1 or coord.ndim > 1:
        _dropped(name, "it spans more than one convolved dim")
        return None
    dim = changed[0]
    n, m = image.sizes[dim], out.shape[image.get_axis_num(dim)]
    values = np.asarray(coord.values)
    if m < n:  # valid: the input coordinate under each output sample
        k = n - m + 1
        return (coord.dims, values[k // 2: k // 2 + m], coord.attrs)
    k = m - n + 1  # full: the output starts (K - 1) // 2 samples before the input
    step = _even_step(values)
    if step is None:
        _dropped(name, "it is not evenly spaced, so the full output's coordinates are unknown")
        return None
    start = values[0] - ((k - 1) // 2) * step
    return (coord.dims, start + step * np.arange(m), coord.attrs)


def _even_step(values: np.ndarray):
    """The constant step of ``values``, or None."""
    if values.size < 2 or values.dtype.kind not in "iufcmM":
        return None
    steps = np.diff(values)
    if values.dtype.kind in "mM":
        return steps[0] if (steps == steps[0]).all() else None
    scale = np.abs(values).max() if values.size else 1.0
    return steps[0] if np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12 * scale) else None


def _dropped(name, why: str) -> None:
    warnings.warn(f"coordinate {name!r} is dropped from the result: {why}", UserWarning,
                  stacklevel=5)


def apply(image, kernel, axes, run: Callable) -> object:
    """``run(data, kernel, axes)`` on a ``DataArray`` image, its result wrapped like it.

    ``kernel`` may be a ``DataArray`` (its dims name the axes) or anything the
    operation takes; ``axes`` may name dims.  A plain image with a ``DataArray``
    kernel takes the kernel's data.
    """
    if not is_dataarray(image):
        return run(image, kernel.data if is_dataarray(kernel) else kernel, axes)
    values, found = kernel_values(image, kernel, axes)
    out = run(image.data, values, found)
    return wrap(image, out, _convolved(image.ndim, found))


def _convolved(ndim: int, axes) -> tuple[int, ...] | None:
    if axes is None:
        return None
    return tuple(int(a) % ndim for a in np.atleast_1d(axes))
