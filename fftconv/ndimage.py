"""``scipy.ndimage``'s filters, computed by fftconv: ``from fftconv import ndimage as ndi``.

The signatures, defaults, mode names, ``origin=``, ``output=`` and output dtypes
are scipy's, so swapping the import gives scipy's numbers, faster on large
kernels and lazy on dask arrays.  What differs from scipy.ndimage:

=====================  ===================================================================
everything             runs on fftconv's engine (exact to SPEC §1.3: the rounding of
                       an FFT may differ from scipy's direct sums in the last bits)
dask arrays            accepted, and the result stays lazy
=====================  ===================================================================

Integer images give integer results as scipy's do: each pass's sums are cut
toward zero and wrapped into the output type (``uint8`` 300 is 44).  What
differs from :func:`fftconv.convolve` itself: the default boundary is
``reflect`` here (``constant`` there), an even kernel is centred one sample
later in :func:`convolve` (scipy.ndimage's convention; fftconv follows
scipy.signal's), and ``origin=`` shifts it.

Examples
--------
>>> import numpy as np, scipy.ndimage
>>> from fftconv import ndimage as ndi
>>> x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
>>> w = np.ones((4, 3), np.float32)
>>> bool(np.allclose(ndi.convolve(x, w), scipy.ndimage.convolve(x, w), atol=1e-5))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fftconv._core.kernels import gaussian_weights
from fftconv._core.lazy import is_dask_array
from fftconv._ops.api import convolve_window

__all__ = [
    "convolve",
    "convolve1d",
    "correlate",
    "correlate1d",
    "gaussian_filter",
    "gaussian_filter1d",
    "uniform_filter",
    "uniform_filter1d",
]

# scipy.ndimage's filter modes, as fftconv's boundaries ("grid-*" are synonyms in filters).
MODES = {"reflect": "reflect", "grid-mirror": "reflect", "mirror": "mirror",
         "nearest": "nearest", "wrap": "wrap", "grid-wrap": "wrap", "constant": "constant",
         "grid-constant": "constant"}


def _boundary(mode: str) -> str:
    try:
        return MODES[mode]
    except (KeyError, TypeError):
        raise RuntimeError("boundary mode not supported") from None  # scipy's error


def _per_axis(value, n: int, name: str) -> list:
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise RuntimeError(f"{name} must have length equal to number of axes")  # scipy's
    return value


def _axes(axes, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    found = tuple(int(a) % ndim if -ndim <= int(a) < ndim else _bad_axis(a, ndim)
                  for a in np.atleast_1d(axes))
    if len(set(found)) != len(found):
        raise ValueError("axes must be unique")
    return found


def _bad_axis(axis, ndim: int):
    raise ValueError(f"axis {axis} is out of bounds for array of dimension {ndim}")


def _output_dtype(image, weights, output) -> np.dtype:
    """scipy.ndimage's: the input's dtype, complex if the weights are, or ``output``'s."""
    if isinstance(output, np.ndarray):
        return output.dtype
    if output is not None:
        return np.dtype(output)
    dtype = np.asarray(image).dtype if not is_dask_array(image) else image.dtype
    if np.iscomplexobj(weights) and dtype.kind != "c":
        return np.result_type(dtype, np.complex64)
    return dtype


def _cast(result, dtype: np.dtype):
    """The result in ``dtype`` as scipy's C code stores it: integers cut toward zero and
    wrapped into the type."""
    if dtype.kind in "iu":
        return np.trunc(result.real if np.iscomplexobj(result) else result).astype(
            np.int64).astype(dtype)
    if dtype.kind == "b":
        return result != 0
    if dtype.kind == "f" and np.iscomplexobj(result):
        raise RuntimeError("output must be complex for complex weights or input")
    return result.astype(dtype, copy=False)


def _finish(result, output):
    if isinstance(output, np.ndarray):
        if output.shape != result.shape:
            raise RuntimeError("output shape not correct")  # scipy's
        output[...] = np.asarray(result)
        return output
    return result


def _work_dtype(image_dtype: np.dtype, weights: np.ndarray) -> np.dtype:
    """scipy sums in double (complex double): integers and float16 work in float64."""
    if image_dtype.kind in "fc" and image_dtype.itemsize >= 4:
        return np.result_type(image_dtype, weights.dtype)
    return np.result_type(np.float64, weights.dtype)


def _filter(image, weights, mode, cval, origin, axes, output, *, flip: bool):
    """scipy.ndimage's correlate (``flip=False``) or convolve over ``axes``.

    ``out[i] = Σⱼ w[j] · ext[i + j − c]``, ``c = K // 2 + origin`` (correlate;
    convolve flips the weights and the origin, and moves an even kernel's
    centre one sample): a window of fftconv's full result starting at
    ``(K - 1) // 2 - origin`` (correlate) or ``K // 2 + origin`` (convolve).
    """
    image = image if is_dask_array(image) else np.asarray(image)
    weights = np.asarray(weights)
    axes = _axes(axes, image.ndim)
    if weights.ndim != len(axes):
        raise RuntimeError("filter weights array has incorrect shape")  # scipy's
    origins = [int(o) for o in _per_axis(origin, len(axes), "origin")]
    if not isinstance(mode, str):  # only the separable filters take one per axis
        raise RuntimeError("A sequence of modes is not supported")  # scipy's
    boundary = _boundary(mode)
    # As scipy.ndimage: the weights' dims run over the axes in increasing order, the
    # origins over the axes in the order given.
    sorted_axes = tuple(sorted(axes))
    origin_of = dict(zip(axes, origins))
    windows = []
    for ax, k in zip(sorted_axes, weights.shape):
        o = origin_of[ax]
        if not -(k // 2) <= o <= (k - 1) // 2:
            raise ValueError(f"Invalid origin; origin must satisfy -({k} // 2) <= origin "
                             f"<= ({k} - 1) // 2")
        start = (k // 2 + o) if flip else ((k - 1) // 2 - o)
        windows.append((start, start + image.shape[ax]))
    out_dtype = _output_dtype(image, weights, output)
    work = _work_dtype(image.dtype, weights)
    # Correlation convolves with the flipped weights, conjugated as scipy.ndimage's
    # correlate does complex ones.
    kernel = _full_ndim(weights if flip else np.conj(np.flip(weights)), sorted_axes,
                        image.ndim)
    result = convolve_window(image, kernel, windows, boundary=boundary, cval=cval,
                             axes=sorted_axes, dtype=work)
    return _finish(_cast(result, out_dtype), output)


def _full_ndim(kernel: np.ndarray, axes: tuple[int, ...], ndim: int) -> np.ndarray:
    shape = [1] * ndim
    for ax, n in zip(axes, kernel.shape):
        shape[ax] = n
    return kernel.reshape(shape)


def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *,
              axes=None):
    """Multidimensional correlation, as ``scipy.ndimage.correlate``.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.correlate(np.arange(5), [1, 2, 3])
    array([ 3,  8, 14, 20, 23])
    """
    return _filter(input, weights, mode, cval, origin, axes, output, flip=False)


def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *,
             axes=None):
    """Multidimensional convolution, as ``scipy.ndimage.convolve``.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.convolve(np.arange(5), [1, 2, 3])
    array([ 1,  4, 10, 16, 21])
    """
    return _filter(input, weights, mode, cval, origin, axes, output, flip=True)


def correlate1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """One-dimensional correlation along ``axis``, as ``scipy.ndimage.correlate1d``.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.correlate1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([ 8, 26,  8, 12,  7, 28, 36,  9])
    """
    return _filter1d(input, weights, axis, output, mode, cval, origin, flip=False)


def convolve1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """One-dimensional convolution along ``axis``, as ``scipy.ndimage.convolve1d``.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.convolve1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([14, 24,  4, 13, 12, 36, 27,  0])
    """
    return _filter1d(input, weights, axis, output, mode, cval, origin, flip=True)


def _filter1d(input, weights, axis, output, mode, cval, origin, *, flip: bool):
    weights = np.asarray(weights)
    if weights.ndim != 1 or weights.size < 1:
        raise RuntimeError("no filter weights given")  # scipy's
    return _filter(_as_input(input), weights, mode, cval, origin, (axis,), output, flip=flip)


def _as_input(value):
    return value if is_dask_array(value) else np.asarray(value)


def _passes(input, output, axes, run):
    """scipy's separable filters: one pass per axis, each stored in the output dtype."""
    image = _as_input(input)
    out = image
    dtype = _output_dtype(image, np.zeros(0), output)
    for axis in axes:
        out = run(out, axis, dtype)
    if not axes:
        out = _cast(image if is_dask_array(image) else np.array(image), dtype)
    return _finish(out, output)


def uniform_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """A running mean of ``size`` samples along ``axis``, as ``scipy.ndimage.uniform_filter1d``.

    Examples
    --------
    >>> from fftconv import ndimage
    >>> ndimage.uniform_filter1d([2, 8, 0, 4, 1, 9, 9, 0], size=3)
    array([4, 3, 4, 1, 4, 6, 6, 3])
    """
    if size < 1:
        raise RuntimeError("incorrect filter size")
    weights = np.broadcast_to(np.float64(1 / size), (int(size),))
    return _filter(_as_input(input), weights, mode, cval, origin, (axis,), output, flip=False)


def uniform_filter(input, size=3, output=None, mode="reflect", cval=0.0, origin=0, *,
                   axes=None):
    """A running mean over a box, as ``scipy.ndimage.uniform_filter`` (one pass per axis).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.uniform_filter(np.arange(16.0).reshape(4, 4), size=3)[1]
    array([4.33333333, 5.        , 6.        , 6.66666667])
    """
    image = _as_input(input)
    axes = _axes(axes, image.ndim)
    sizes = _per_axis(size, len(axes), "size")
    origins = _per_axis(origin, len(axes), "origin")
    modes = _per_axis(mode, len(axes), "mode")
    plan = {ax: (s, o, m) for ax, s, o, m in zip(axes, sizes, origins, modes) if s > 1}

    def run(x, axis, dtype):
        s, o, m = plan[axis]
        return uniform_filter1d(x, s, axis, dtype, m, cval, o)

    return _passes(image, output, [ax for ax in axes if ax in plan], run)


def gaussian_filter1d(input, sigma, axis=-1, order=0, output=None, mode="reflect", cval=0.0,
                      truncate=4.0, *, radius=None):
    """A 1-D Gaussian filter (or its derivative), as ``scipy.ndimage.gaussian_filter1d``.

    Examples
    --------
    >>> from fftconv import ndimage
    >>> ndimage.gaussian_filter1d([1.0, 2.0, 3.0, 4.0, 5.0], 1)
    array([1.42704095, 2.06782203, 3.        , 3.93217797, 4.57295905])
    """
    r = int(truncate * float(sigma) + 0.5) if radius is None else int(radius)
    if r < 0:
        raise ValueError("Radius must be a nonnegative integer.")
    weights = gaussian_weights(float(sigma), int(order), r)[::-1]
    return _filter(_as_input(input), weights, mode, cval, 0, (axis,), output, flip=False)


def gaussian_filter(input, sigma, order=0, output=None, mode="reflect", cval=0.0,
                    truncate=4.0, *, radius=None, axes=None):
    """A Gaussian filter, as ``scipy.ndimage.gaussian_filter`` (one pass per axis).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.gaussian_filter(np.arange(8, dtype=np.uint8), 1)
    array([0, 1, 2, 3, 3, 4, 5, 6], dtype=uint8)
    """
    image = _as_input(input)
    axes = _axes(axes, image.ndim)
    sigmas = _per_axis(sigma, len(axes), "sigma")
    orders = _per_axis(order, len(axes), "order")
    modes = _per_axis(mode, len(axes), "mode")
    radii = _per_axis(radius, len(axes), "radius")
    plan = {ax: (s, o, m, r) for ax, s, o, m, r in zip(axes, sigmas, orders, modes, radii)
            if s > 1e-15}

    def run(x, axis, dtype):
        s, o, m, r = plan[axis]
        return gaussian_filter1d(x, s, axis, o, dtype, m, cval, truncate, radius=r)

    return _passes(image, output, [ax for ax in axes if ax in plan], run)
