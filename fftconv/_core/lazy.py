"""The one test for a lazy (dask) array, made without importing dask.

A value can be a dask array only once ``dask.array`` is imported: until then
the test costs a dictionary lookup, and ``import fftconv`` stays free of dask.

Examples
--------
>>> import numpy as np
>>> is_dask_array(np.ones(3)), is_dask_array([1, 2])
(False, False)
>>> import dask.array as da
>>> is_dask_array(da.ones(3, chunks=2))
True
"""

from __future__ import annotations

import sys

import numpy as np


def is_dask_array(value: object) -> bool:
    """Whether ``value`` is a ``dask.array.Array``."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(value, dask_array.Array)


def is_dataarray(value: object) -> bool:
    """Whether ``value`` is an ``xarray.DataArray`` (without importing xarray)."""
    xarray = sys.modules.get("xarray")
    return xarray is not None and isinstance(value, xarray.DataArray)


def unwrap_lazy(value):
    """The dask array inside a dask collection that wraps one (``.data``, ``.magnitude``),
    so that it stays lazy; any other value as it is.

    Found by dask's own protocol (``dask.is_dask_collection``), asked only once dask is
    loaded: a collection cannot exist before.  A dask collection that holds no dask
    array (a dataframe, a delayed value) is a TypeError rather than computed whole.

    Examples
    --------
    >>> import numpy as np
    >>> unwrap_lazy(np.ones(2))
    array([1., 1.])
    """
    # An ndarray (every in-memory call) is answered without asking dask.
    if isinstance(value, np.ndarray) or is_dask_array(value) or "dask" not in sys.modules:
        return value
    import dask

    if not dask.is_dask_collection(value):
        return value
    for name in ("data", "magnitude"):
        inner = getattr(value, name, None)
        if is_dask_array(inner):
            return inner
    raise TypeError(f"a {type(value).__name__} is a dask collection that holds no dask "
                    "array; pass a dask.array.Array (fftconv tiles those lazily)")


def as_dask_array(value):
    """``value`` as a dask array: itself, or an in-memory array in dask's default chunks.

    For a call whose other argument is lazy: a dask array in, a lazy one out (SPEC §2).
    """
    if is_dask_array(value):
        return value
    import dask.array as da

    return da.from_array(np.asarray(value))
