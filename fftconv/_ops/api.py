"""convolve / correlate / plan: validate, resolve settings once, hand over.

An in-memory call goes to the planning layer's engine (through the routes
kept per call, :data:`fftconv._planning.CALLS`); a dask array goes to the
halo tiling (:mod:`fftconv._tiling`).
"""

from __future__ import annotations

import functools

import numpy as np

from fftconv import _tiling
from fftconv._core import settings as _config
from fftconv._core.lazy import as_dask_array, is_dask_array, is_dataarray, unwrap_lazy
from fftconv._core.masks import refuse_masked, remask, unmask
from fftconv._core.request import build_request
from fftconv._core.shapes import BOUNDARIES, check_choice, stand_in
from fftconv._ops import labelled
from fftconv._planning import CALLS, plan_request, run_request
from fftconv._planning.planner import Plan


def plan(image_shape, kernel_shape, *, dtype=None, mode="same", boundary="constant",
         axes=None, method="auto", backend=None, workers=None) -> Plan:
    """How :func:`convolve` would run for these shapes, without any data.

    Parameters
    ----------
    image_shape, kernel_shape : tuple of int, or array
        The shapes; or the image and the kernel themselves, as :func:`convolve`
        takes them.  Of the image only the shape and dtype are read; an
        in-memory kernel's zero taps cost the direct method nothing.  The plan
        is of the general methods: a kernel's structure (separable, low rank,
        box) is found when :func:`convolve` runs.
    dtype : dtype, optional
        The image's and the kernel's dtype; by default an array's own, and
        float32 for a shape.
    mode, boundary, axes, method, backend, workers
        As :func:`convolve` takes them.

    Returns
    -------
    Plan
        ``.method``, ``.fft_shape``, ``.block_shape``, every candidate's
        estimated seconds and bytes, and ``.explain()``.

    Examples
    --------
    >>> import fftconv
    >>> p = fftconv.plan((4096, 4096), (3, 3))
    >>> p.method
    'direct'
    >>> fftconv.plan((4096, 4096), (255, 255)).method in ("fft", "overlap-add")
    True
    >>> import numpy as np
    >>> image, psf = np.zeros((2048, 2048), np.float32), np.ones((65, 65), np.float32)
    >>> fftconv.plan(image, psf).method == fftconv.plan(image.shape, psf.shape).method
    True
    """
    check_choice("boundary", boundary, BOUNDARIES)
    image = stand_in("image_shape", image_shape, dtype)
    kernel = (kernel_shape.astype(kernel_shape.dtype if dtype is None else dtype, copy=False)
              if isinstance(kernel_shape, np.ndarray)
              else stand_in("kernel_shape", kernel_shape, dtype, fill=1.0))
    request = build_request(image, kernel, mode, boundary, 0.0, axes, method, "propagate",
                            None, flip=False)
    return plan_request(request, _config.resolve(backend=backend, workers=workers))


def _dispatch(image, kernel, mode, boundary, cval, axes, method, backend, workers, nan_policy,
              dtype, *, flip: bool, tile=None):
    if is_dataarray(image) or is_dataarray(kernel):
        return labelled.apply(image, kernel, axes, lambda data, k, found: _dispatch(
            data, k, mode, boundary, cval, found, method, backend, workers, nan_policy, dtype,
            flip=flip, tile=tile))
    image, kernel = unwrap_lazy(image), unwrap_lazy(kernel)
    refuse_masked(kernel, "kernel")
    image, masked = unmask(image)
    out = _unmasked_dispatch(image, kernel, mode, boundary, cval, axes, method, backend, workers,
                             nan_policy, dtype, flip=flip, tile=tile)
    return remask(out) if masked else out


def _unmasked_dispatch(image, kernel, mode, boundary, cval, axes, method, backend, workers,
                       nan_policy, dtype, *, flip: bool, tile=None):
    if is_dask_array(image) or is_dask_array(kernel):
        return _tiling.convolve(as_dask_array(image), kernel, mode, boundary, cval, axes, method,
                                backend, workers, nan_policy, dtype, flip=flip, tile=tile)
    if tile is not None:
        raise ValueError(f"tile={tile!r} applies to dask arrays only (the image is in memory)")
    request = build_request(image, kernel, mode, boundary, cval, axes, method, nan_policy,
                            dtype, flip=flip)
    settings = _config.resolve(backend=backend, workers=workers)
    return run_request(request, settings, finite=functools.partial(CALLS.run, settings=settings))


def convolve_window(image, kernel, windows, *, boundary="constant", cval=0.0, axes=None,
                    method="auto", backend=None, workers=None, nan_policy="propagate",
                    dtype=None, flip=False):
    """Any window of the full convolution of the boundary-extended image, not only a mode's.

    ``windows`` holds, per convolved axis in increasing order, the ``[start, stop)``
    of the full result (length ``N + K - 1``) to return; the image is extended
    by ``boundary`` as far as they reach.  For the drop-ins of
    :mod:`fftconv.ndimage` (``origin=``, even kernels centred as scipy.ndimage
    does).  A dask array in gives a lazy one out.
    """
    refuse_masked(kernel, "kernel")
    refuse_masked(image, "image")
    windows = tuple((int(a), int(b)) for a, b in windows)
    if is_dask_array(image) or is_dask_array(kernel):
        return _tiling.convolve(as_dask_array(image), kernel, "same", boundary, cval, axes,
                                method, backend, workers, nan_policy, dtype, flip=flip,
                                windows=windows)
    request = build_request(image, kernel, "same", boundary, cval, axes, method, nan_policy,
                            dtype, flip=flip)
    if len(windows) != len(request.axes):
        raise ValueError(f"{len(windows)} windows for {len(request.axes)} convolved axes")
    # Not a mode's windows: no route that computes a mode's ('same' by OpenCV) applies.
    request = request.replace(windows=windows, mode="window")
    settings = _config.resolve(backend=backend, workers=workers)
    return run_request(request, settings, finite=functools.partial(CALLS.run, settings=settings))


def convolve(image, kernel, mode="same", *, boundary="constant", cval=0.0, axes=None,
             method="auto", backend=None, workers=None, nan_policy="propagate", dtype=None,
             tile=None):
    """N-D convolution of ``image`` with ``kernel``, exact on every method.

    The result is defined by extending the image with ``boundary``, taking
    the full linear convolution and cropping it by ``mode`` (SPEC §1.1).

    Parameters
    ----------
    image, kernel : array_like
        Numeric arrays.  With ``axes=None`` they have the same ndim.
    mode : {'same', 'full', 'valid'}
        ``'same'``: the image's shape, centred like scipy.signal (also for even
        kernels); ``'full'``: every overlap; ``'valid'``: only where the kernel
        fits inside the image.
    boundary : {'constant', 'reflect', 'mirror', 'nearest', 'wrap'}
        How the image is extended beyond its edges (scipy.ndimage's names).
    cval : scalar
        The value outside the image for ``boundary='constant'``.
    axes : int, str or sequence of them, optional
        The convolved axes (dim names for an ``xarray.DataArray``).  Other axes
        broadcast; a kernel with ``len(axes)`` dimensions is applied to every
        slice along the others.
    method : {'auto', 'direct', 'fft', 'overlap-add'}
        ``'auto'`` lets the planner pick the fastest estimate.
    backend : str or backend object, optional
        A registered FFT backend (``fftconv.available_backends()``), or a backend
        object meeting ``fftconv.backends.FFTBackend``; default from the
        configuration.
    workers : int, optional
        Threads for this call; negative counts back from all cores.
    nan_policy : {'propagate', 'raise', 'interpolate'}
        ``'propagate'``: NaN exactly where a non-finite input lies under a
        non-zero tap.  ``'raise'``: ValueError.  ``'interpolate'``: normalized
        convolution that treats non-finite inputs as missing.
    dtype : dtype, optional
        Result dtype; default ``result_type(image, kernel, float32)``.
    tile : {None, 'auto'}
        Dask arrays only: ``'auto'`` rechunks the convolved axes so that every
        tile plus the kernel's halo is a fast FFT length (the chunks change;
        the values do not).

    Returns
    -------
    numpy.ndarray, dask.array.Array or xarray.DataArray
        A dask array in gives a lazy dask array out.  A new array, never a view
        of the input; a direct 'valid' or 'full' result may be a window of a
        slightly larger one (as scipy.signal.fftconvolve's are).  An
        ``xarray.DataArray`` gives one with the same dims, name and attrs, its
        coordinates following the mode (:mod:`fftconv._ops.labelled`); a
        ``DataArray`` kernel's dims name the convolved axes.

    Notes
    -----
    The method chosen for a call (and a structured kernel's route) is kept for
    the 64 most recent distinct calls, found by the kernel's values, the
    shapes, the options, the settings and the calibrated rates: repeating a
    call plans nothing.  A :class:`Convolver` also skips the validation and settings.

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> fftconv.convolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5], mode="full")
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> fftconv.convolve(np.ones(4, np.float32), np.ones(3, np.float32)).dtype
    dtype('float32')
    >>> x = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    >>> fftconv.convolve(x, [[1, 2], [3, 4]], mode="valid")
    array([[23., 33.],
           [53., 63.]])
    >>> fftconv.convolve(x, np.ones((3, 3)) / 9, boundary="nearest").round(3)
    array([[2.333, 3.   , 3.667],
           [4.333, 5.   , 5.667],
           [6.333, 7.   , 7.667]])
    """
    return _dispatch(image, kernel, mode, boundary, cval, axes, method, backend, workers,
                     nan_policy, dtype, flip=False, tile=tile)


def correlate(image, kernel, mode="same", *, boundary="constant", cval=0.0, axes=None,
              method="auto", backend=None, workers=None, nan_policy="propagate", dtype=None,
              tile=None):
    """N-D cross-correlation: ``convolve(image, conj(flip(kernel)), ...)``.

    Correlation slides the kernel without flipping it (this is what deep
    learning frameworks call "convolution").  Parameters are those of
    :func:`convolve`.

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> x = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    >>> fftconv.correlate(x, [[1, 2], [3, 4]], mode="valid")
    array([[37., 47.],
           [67., 77.]])
    """
    return _dispatch(image, kernel, mode, boundary, cval, axes, method, backend, workers,
                     nan_policy, dtype, flip=True, tile=tile)
