"""window_sum: the sum over every window, in time independent of its size.

Validation and the hand-off: in memory the sums run in
:mod:`fftconv._methods.box` (float64 running sums, exact to SPEC §1.3); a
dask array is tiled with halos as :func:`fftconv.convolve` tiles it.
"""

from __future__ import annotations

import numpy as np

from fftconv import _tiling
from fftconv._core import settings as _config
from fftconv._core.lazy import is_dask_array, is_dataarray, unwrap_lazy
from fftconv._core.masks import remask, unmask
from fftconv._core.shapes import normalize_axes
from fftconv._methods.box import window_sums
from fftconv._ops import labelled


def _sizes(size, axes: tuple[int, ...]) -> tuple[int, ...]:
    sizes = (size,) * len(axes) if np.ndim(size) == 0 else tuple(size)
    if len(sizes) != len(axes):
        raise ValueError(f"size={size!r} needs one length per convolved axis ({len(axes)})")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
            raise ValueError(f"size={size!r} must be positive ints")
    return tuple(int(s) for s in sizes)


def window_sum(array, size, mode="same", *, boundary="constant", cval=0.0, axes=None,
               dtype=None):
    """Sum over every ``size`` window: ``convolve(array, np.ones(size), ...)``, fast.

    Time does not depend on ``size``; sums accumulate in float64, so data with
    a large offset keeps full accuracy.  A non-finite input makes NaN exactly
    the windows that contain it; so does a masked pixel of a masked array,
    whose sums come back masked there.

    Parameters
    ----------
    array : array_like or dask.array.Array
        A dask array gives a lazy dask array, tiled with halos like
        :func:`fftconv.convolve`.
    size : int, sequence of int or dict
        Window length, one for every convolved axis or one for all; for an
        ``xarray.DataArray``, also ``{dim: length}`` (the dims are the axes).
    mode, boundary, cval, axes, dtype
        As in :func:`fftconv.convolve` (``dtype="float64"`` keeps the float64 sums).

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> fftconv.window_sum(np.arange(6.0), 3)
    array([ 1.,  3.,  6.,  9., 12.,  9.])
    >>> a, b = np.ones((4, 4)), np.full((4, 4), 2.0)
    >>> fftconv.window_sum(a**2 - b**2, 3, mode="valid")   # sum of A² − B² per window
    array([[-27., -27.],
           [-27., -27.]])
    """
    if is_dataarray(array):
        if isinstance(size, dict):  # {dim: length}
            axes = [d for d in array.dims if d in size]
            size = [size[d] for d in axes]
        return labelled.apply(array, size, axes, lambda data, s, found: window_sum(
            data, s, mode, boundary=boundary, cval=cval, axes=found, dtype=dtype))
    array, masked = unmask(unwrap_lazy(array))
    sums = _window_sum(array, size, mode, boundary, cval, axes, dtype)
    return remask(sums) if masked else sums


def _window_sum(array, size, mode, boundary, cval, axes, dtype):
    lazy = is_dask_array(array)
    if not lazy:
        array = np.asarray(array)
    ndim = array.ndim
    conv_axes = normalize_axes(axes, ndim, ndim)
    sizes = _sizes(size, conv_axes)
    shape = [1] * ndim
    for ax, s in zip(conv_axes, sizes):
        shape[ax] = s
    kernel = np.broadcast_to(np.ones((), dtype=np.float32), shape)
    if lazy:  # SPEC §2: the halo tiling of convolve, window sums per tile
        return _tiling.window_sums(array, kernel, mode, boundary, cval, axes, dtype)
    _config.resolve()  # a malformed configuration is reported here too
    return window_sums(array, kernel, mode, boundary, cval, axes, dtype)
