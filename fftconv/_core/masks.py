"""NumPy masked arrays: masked pixels are missing values, never silently read.

``np.asarray`` drops a mask and keeps the values under it, so a convolution
of a masked image would mix in pixels the user marked as invalid, with
nothing to say so (scipy.signal does exactly that).  convolve, correlate,
:class:`~fftconv.Convolver` and window_sum take a masked image as the
non-finite values of SPEC §1.4: the masked pixels are NaN to ``nan_policy``,
and the result is a masked array, masked where it is not finite (as
``np.ma.convolve`` masks an output that a masked input reaches).  Every other
argument that cannot mean that (a kernel, a template, a cotangent) is refused
when anything in it is masked.
"""

from __future__ import annotations

import numpy as np


def is_masked_input(value: object) -> bool:
    """Whether ``value`` is a NumPy masked array or a dask array of masked blocks."""
    if isinstance(value, np.ma.MaskedArray):
        return True
    return isinstance(getattr(value, "_meta", None), np.ma.MaskedArray) and hasattr(
        value, "map_blocks")


def unmask(image):
    """``image`` with its masked pixels NaN, in a dtype that holds NaN, and whether it was masked.

    An image that is not a masked array comes back as it is, and one with
    nothing masked as its data.  Otherwise it is copied (the caller's array is
    never changed) into ``result_type(dtype, float32)``,
    the working dtype of SPEC §1.3, so an integer image loses nothing it
    would keep otherwise.  A dask array is filled block by block, lazily.

    Examples
    --------
    >>> import numpy as np
    >>> pixels = np.array([1, 2, 3], dtype=np.uint16)
    >>> filled, masked = unmask(np.ma.masked_array(pixels, mask=[0, 1, 0]))
    >>> filled, masked
    (array([ 1., nan,  3.], dtype=float32), True)
    """
    if not is_masked_input(image):
        return image, False
    dtype = np.result_type(image.dtype, np.float32)
    if isinstance(image, np.ma.MaskedArray):
        return (_filled(image, dtype) if np.ma.is_masked(image) else image.data), True
    return image.map_blocks(_filled, dtype, dtype=dtype,
                            meta=np.empty((0,) * image.ndim, dtype)), True


def _filled(block, dtype) -> np.ndarray:
    return np.ma.asarray(block).astype(dtype, copy=True).filled(np.nan)


def remask(result):
    """``result`` (ndarray or dask array) as a masked array, masked where it is not finite.

    Examples
    --------
    >>> remask(np.array([1.0, np.nan]))
    masked_array(data=[1.0, --],
                 mask=[False,  True],
           fill_value=1e+20)
    """
    if isinstance(result, np.ndarray):
        return np.ma.masked_invalid(result, copy=False)
    meta = np.ma.masked_array(np.empty((0,) * result.ndim, result.dtype))
    return result.map_blocks(np.ma.masked_invalid, dtype=result.dtype, meta=meta)


def refuse_masked(value: object, name: str, hint: str | None = None) -> None:
    """TypeError when ``value`` is masked somewhere (or a dask array of masked blocks).

    For the arguments where a masked value has no meaning fftconv could keep.
    A masked array with nothing masked is plain data and passes.  ``hint``
    says what to do instead; by default, fill it.

    Examples
    --------
    >>> refuse_masked(np.ma.masked_array([1.0, 2.0]), "kernel")
    >>> refuse_masked(np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "kernel")
    Traceback (most recent call last):
        ...
    TypeError: kernel is a masked array with 1 masked value; fill it: kernel.filled(...)
    """
    hint = hint or f"fill it: {name}.filled(...)"
    if isinstance(value, np.ma.MaskedArray):
        count = int(np.ma.count_masked(value))
        if count:
            raise TypeError(f"{name} is a masked array with {count} masked value"
                            f"{'s' if count > 1 else ''}; {hint}")
    elif is_masked_input(value):
        raise TypeError(f"{name} is a dask array of masked blocks; {hint}")
