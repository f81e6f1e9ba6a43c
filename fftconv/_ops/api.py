"""convolve / correlate: validate, resolve settings once, plan, run, crop."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from fftconv._core import nonfinite as _nonfinite
from fftconv._core import settings as _config
from fftconv._core.masks import refuse_masked, remask, unmask
from fftconv._core.problem import LinearProblem, linear_problem, within_reach
from fftconv._core.request import Request, build_request
from fftconv._core.shapes import BOUNDARIES, check_choice, extension, stand_in
from fftconv._methods import RUNNERS
from fftconv._methods import direct as direct_method
from fftconv._methods import structured as _structured
from fftconv._methods.spectra import SHARED, SpectrumCache
from fftconv._planning import autotune as _autotune
from fftconv._planning.planner import Plan, Planner
from fftconv._registry.discovery import load_backend


def _is_dask(value: object) -> bool:
    return type(value).__module__.split(".")[0] == "dask"


def as_lazy(value):
    """``value`` as a dask array: itself, or an in-memory array in dask's default chunks.

    For a call whose other argument is lazy: a dask array in, a lazy one out (SPEC §2).
    """
    if _is_dask(value):
        return value
    import dask.array as da

    return da.from_array(np.asarray(value))


def make_planner(settings: _config.Settings, kernel_ready: bool = False) -> Planner:
    return Planner(load_backend(settings.backend), settings.threads(), settings.memory_limit,
                   kernel_ready=kernel_ready)


def shape_problem(request: Request) -> LinearProblem:
    """The request's LinearProblem with zero-stride stand-ins for the data (nothing allocated)."""
    shape = list(request.image.shape)
    windows = request.windows
    if request.boundary != "constant":
        moved = []
        for ax, (a, b) in zip(request.axes, request.windows):
            left, right = extension(shape[ax], request.kernel.shape[ax], (a, b))
            shape[ax] += left + right
            moved.append((a + left, b + left))
        windows = tuple(moved)
    y = np.broadcast_to(np.zeros((), dtype=request.image.dtype), shape)
    return within_reach(LinearProblem(y, request.kernel, request.axes, windows))


def plan_request(request: Request, settings: _config.Settings,
                 spectra: SpectrumCache | None = None) -> Plan:
    # Plans depend on shapes only: plan on stand-ins, so a direct 'same' call can go
    # straight to OpenCV's own borders without building the extended image first.
    planner = make_planner(settings, kernel_ready=spectra is not None)
    return planner.plan(shape_problem(request), request.method)


def default_spectra(settings: _config.Settings) -> SpectrumCache | None:
    if settings.spectrum_cache <= 0:
        return None
    SHARED.entries = settings.spectrum_cache
    return SHARED


def compute(request: Request, settings: _config.Settings,
            spectra: SpectrumCache | None = None) -> np.ndarray:
    """Run a request whose inputs are finite (structured kernels first, when cheaper)."""
    return route(request, settings, spectra)(request)


def route(request: Request, settings: _config.Settings, spectra: SpectrumCache | None = None,
          passes: Callable[[Request], np.ndarray] | None = None
          ) -> Callable[[Request], np.ndarray]:
    """How :func:`compute` runs ``request``, decided now: a function of the request.

    It runs any request like this one (same kernel object, options, image
    shape and dtype; other image values) without planning again.  A
    structured kernel's passes go through ``passes`` (by default planned each
    time, as :func:`compute_plain`).
    """
    if request.method == "auto":
        structured = _structured.choose(request, settings, plan_request)
        if structured is not None:
            if passes is None:
                passes = functools.partial(compute_plain, settings=settings, spectra=spectra)
            return functools.partial(_structured.run, structured, compute_plain=passes)
    return plain_route(request, settings, spectra)


def plain_route(request: Request, settings: _config.Settings,
                spectra: SpectrumCache | None = None) -> Callable[[Request], np.ndarray]:
    """:func:`route` among the three general methods only."""
    plan = plan_request(request, settings, spectra)
    if request.method == "auto" and settings.autotune:
        plan = _autotune.best(request, plan, settings, spectra, run_plan)
    if plan.method == "direct":
        # 'same' on OpenCV's own borders, straight from the image, when it can.
        opencv = direct_method.opencv_same_route(request)
        if opencv is not None:
            return opencv
    return functools.partial(run_plan, plan=plan, settings=settings, spectra=spectra)


def compute_plain(request: Request, settings: _config.Settings,
                  spectra: SpectrumCache | None = None) -> np.ndarray:
    """Run a request with one of the three general methods."""
    return plain_route(request, settings, spectra)(request)


def static_plan(request: Request, settings: _config.Settings,
                spectra: SpectrumCache | None = None) -> Plan | None:
    """The general-method plan :func:`compute` will run for ``request``, known from shapes.

    None when the choice waits for the data or the clock: a structured kernel
    path (``method="auto"``) or autotuning.  For callers that prepare buffers
    for the plan (:mod:`fftconv._tiling.dask`) and must agree with :func:`compute`.
    """
    if request.method == "auto" and (
            settings.autotune or _structured.choose(request, settings, plan_request) is not None):
        return None
    return plan_request(request, settings, spectra)


def run_plan(request: Request, plan: Plan, settings: _config.Settings,
             spectra: SpectrumCache | None) -> np.ndarray:
    """Run one general method on the request's real data."""
    problem = linear_problem(request.image, request.kernel, request.axes, request.windows,
                             request.boundary, request.cval)
    plan = dataclasses.replace(plan, spectra=spectra if spectra is not None
                               else default_spectra(settings))
    out = RUNNERS[plan.method](problem, plan)
    if problem.offset is not None:
        out += problem.offset
    return out


def run_request(request: Request, settings: _config.Settings,
                spectra: SpectrumCache | None = None,
                finite: Callable[[Request], np.ndarray] | None = None) -> np.ndarray:
    """Apply ``nan_policy`` around ``finite``, by default :func:`compute`."""
    if finite is None:
        finite = functools.partial(compute, settings=settings, spectra=spectra)
    with _config.in_effect(settings):
        if request.nan_policy == "raise":
            _nonfinite.check_raise(request)
            return finite(request)
        if request.nan_policy == "interpolate":
            return _nonfinite.interpolate(request, finite)
        return _nonfinite.propagate(request, finite)


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
    refuse_masked(kernel, "kernel")
    image, masked = unmask(image)
    out = _unmasked_dispatch(image, kernel, mode, boundary, cval, axes, method, backend, workers,
                             nan_policy, dtype, flip=flip, tile=tile)
    return remask(out) if masked else out


def _unmasked_dispatch(image, kernel, mode, boundary, cval, axes, method, backend, workers,
                       nan_policy, dtype, *, flip: bool, tile=None):
    if _is_dask(image) or _is_dask(kernel):
        from fftconv._tiling import dask as _dask

        return _dask.convolve(as_lazy(image), kernel, mode, boundary, cval, axes, method, backend,
                              workers, nan_policy, dtype, flip=flip, tile=tile)
    if tile is not None:
        raise ValueError(f"tile={tile!r} applies to dask arrays only (the image is in memory)")
    request = build_request(image, kernel, mode, boundary, cval, axes, method, nan_policy,
                            dtype, flip=flip)
    settings = _config.resolve(backend=backend, workers=workers)
    from fftconv._planning.routes import CALLS

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
    axes : int or sequence of int, optional
        The convolved axes.  Other axes broadcast; a kernel with ``len(axes)``
        dimensions is applied to every slice along the others.
    method : {'auto', 'direct', 'fft', 'overlap-add'}
        ``'auto'`` lets the planner pick the fastest estimate.
    backend : str, optional
        A registered FFT backend (``fftconv.available_backends()``); default from
        the configuration.
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
    numpy.ndarray or dask.array.Array
        A dask array in gives a lazy dask array out.  A new array, never a view
        of the input; a direct 'valid' or 'full' result may be a window of a
        slightly larger one (as scipy.signal.fftconvolve's are).

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
