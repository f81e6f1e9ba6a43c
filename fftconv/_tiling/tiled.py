"""Dask arrays in, lazy Dask arrays out (SPEC §2): halo tiling with any chunking.

Every output block reads exactly the region of the boundary-extended image
it needs — its own extent plus the kernel's reach, asymmetric for even
kernels, across as many input chunks as that takes (chunks smaller than the
halo included) — and computes a ``valid`` convolution of it in memory.  The
extension is never built: the boundary rule's index map (``np.pad``'s, so
every rule and extensions wider than the image match the in-memory result)
points each of its pieces into the input chunk it copies, so that edge blocks
read chunks as interior ones do and dask orders them alike.

The kernel enters the graph once (one ``dask.delayed`` key every block
depends on).  Backend, method, threads and every other setting are resolved
when the graph is built and re-applied inside each task, so a worker computes
what the caller configured; each worker process keeps the kernel's spectrum
for the tile shapes it sees.  Tasks use one FFT thread unless ``workers=`` is
given: the scheduler's own threads are the parallelism.

This module is imported only when a Dask array arrives.
"""

from __future__ import annotations

import dataclasses

import dask
import numpy as np

from fftconv._core import settings as _config
from fftconv._core.lazy import is_dask_array
from fftconv._core.nonfinite import has_nonfinite
from fftconv._core.problem import LinearProblem, within_reach
from fftconv._core.request import build_request
from fftconv._core.shapes import extension, extension_doubles
from fftconv._registry import load_backend, registered_name
from fftconv._tiling.blocks import convolve_block, whole_block, window_block
from fftconv._tiling.chunks import (
    check_known_chunks,
    fast_tiles,
    merged,
    output_chunks,
    whole_short_axes,
)
from fftconv._tiling.graph import assemble


def frozen_settings(backend=None, workers=None) -> dict:
    """Every setting in effect now, for tasks to re-apply: one FFT thread unless ``workers``.

    A backend object that the registry loaded travels by its name, as a :class:`Plan`
    does: a worker process gets its own (pyFFTW's holds a module, which no pickle takes).
    """
    settings = _config.resolve(backend=backend, workers=1 if workers is None else workers)
    frozen = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    if not isinstance(frozen["backend"], str):
        frozen["backend"] = registered_name(frozen["backend"])
    return frozen


def converts_in_blocks(dtype: np.dtype, request) -> bool:
    """Whether blocks may take the input's chunks in ``dtype`` and convert them as they join.

    Without an ``astype`` layer a store read stays a plain read, which the halo
    strips can re-read (:func:`reread`): a uint16 zarr image keeps the memory
    bound.  Only safe conversions qualify (no value turns non-finite on the
    way), and a constant boundary's ``cval`` must survive in ``dtype``.
    """
    if dtype == request.dtype:
        return True
    if not np.can_cast(dtype, request.dtype, "safe"):
        return False
    if request.boundary != "constant":
        return True
    cval = np.asarray(request.cval, dtype=request.dtype)
    kept = cval
    if cval.dtype.kind == "c" and np.dtype(dtype).kind != "c":  # a cast would warn
        if cval.imag != 0:
            return False
        kept = cval.real
    with np.errstate(all="ignore"):
        return bool(kept.astype(dtype).astype(request.dtype) == cval)


def convolve(image, kernel, mode, boundary, cval, axes, method, backend, workers, nan_policy,
             dtype, *, flip: bool, tile=None, block=None, windows=None):
    """The lazy counterpart of :func:`fftconv.convolve` for a dask array ``image``.

    ``block`` computes each output block (default :func:`convolve_block`, a ``valid``
    convolution); it takes ``convolve_block``'s arguments.  ``windows`` replaces the
    mode's: per convolved axis (in sorted order), the ``[start, stop)`` of the
    full convolution to return (the adjoints take windows no mode gives).
    """
    check_known_chunks(image)
    kernel = np.asarray(kernel.compute() if is_dask_array(kernel) else kernel)
    stand_in = np.broadcast_to(np.zeros((), dtype=image.dtype), image.shape)
    request = build_request(stand_in, kernel, mode, boundary, cval, axes, method, nan_policy,
                            dtype, flip=flip)
    if windows is not None:
        request = request.replace(windows=tuple(windows))
    request = _within_reach(request)
    frozen = frozen_settings(backend, workers)
    k = request.kernel
    x = image if converts_in_blocks(image.dtype, request) else image.astype(request.dtype)
    for ax in range(x.ndim):  # broadcast kernel axes: those image axes stay whole
        if ax not in request.axes and k.shape[ax] > 1 and len(x.chunks[ax]) > 1:
            x = x.rechunk({ax: -1})
    x = whole_short_axes(x, k.shape, request.axes)
    halos = {ax: k.shape[ax] - 1 for ax in request.axes}
    if tile == "auto":
        backend_obj = load_backend(frozen["backend"])
        near = merged(x.chunks, request.axes, halos=halos)  # small chunks: a block's tiles
        x = x.rechunk({ax: fast_tiles(near[ax], k.shape[ax],
                                      lambda n: backend_obj.next_fast_len(n, True))
                       for ax in request.axes})
    elif tile is not None:
        raise ValueError(f"tile={tile!r} is not one of None, 'auto'")
    out_chunks = list(x.chunks)
    pads = {ax: extension(x.shape[ax], k.shape[ax], window)
            for ax, window in zip(request.axes, request.windows)}
    if block is None and windows is None and tile is None and _whole_along_the_kernel(x,
                                                                                       request):
        return _whole(x, request, frozen)
    for ax, (a, b) in zip(request.axes, request.windows):
        out_chunks[ax] = output_chunks(image.chunks[ax] if tile is None else out_chunks[ax],
                                     b - a)
    for ax in range(x.ndim):
        if ax not in request.axes:
            out_chunks[ax] = (max(x.shape[ax], k.shape[ax]),) if k.shape[ax] > 1 and \
                x.shape[ax] == 1 else x.chunks[ax]
    out_chunks = tuple(out_chunks)
    blocks = out_chunks if tile == "auto" else merged(out_chunks, request.axes, halos=halos)
    kernel_key = dask.delayed(k, pure=True)
    token = dask.base.tokenize(k, request.dtype.str)
    result = assemble(x, k, request, blocks, pads, kernel_key, token, method, nan_policy,
                       frozen, block or convolve_block)
    return result if blocks == out_chunks else result.rechunk(out_chunks)


def _whole_along_the_kernel(x, request) -> bool:
    """Whether ``x`` is one chunk along every axis the kernel spans, and extending it by the
    boundary rule would more than double it: then no tiling is needed, and the
    in-memory engine may not need the extension at all (:func:`_whole`)."""
    k = request.kernel.shape
    if request.boundary == "constant" or any(len(x.chunks[ax]) > 1 and k[ax] > 1
                                             for ax in request.axes):
        return False
    return extension_doubles(x.shape, k, request.axes, request.windows)


def _whole(x, request, frozen: dict):
    """Each block of ``x`` (whole along the convolved axes) convolved in memory."""
    k = request.kernel
    if k.size and not any(k.strides):  # one value broadcast: sent as that value
        k, shape = np.array(k.flat[0], dtype=k.dtype), k.shape
    else:
        k, shape = dask.delayed(k, pure=True), None  # one key every block depends on
    chunks = list(x.chunks)
    for ax, (a, b) in zip(request.axes, request.windows):
        if request.kernel.shape[ax] > 1:  # along the others the window is the whole axis
            chunks[ax] = (b - a,)
    for ax in range(x.ndim):
        if ax not in request.axes and request.kernel.shape[ax] > 1 and x.shape[ax] == 1:
            chunks[ax] = (request.kernel.shape[ax],)
    return x.map_blocks(whole_block, k, shape, request.mode, request.boundary, request.cval,
                        request.axes, request.method, request.nan_policy, request.dtype,
                        frozen, chunks=tuple(chunks), dtype=request.dtype, meta=np.empty(
                            (0,) * x.ndim, dtype=request.dtype))


def _within_reach(request):
    """``request`` without the kernel's taps that meet none of the image (zeros outside).

    The same cut as in memory (:func:`fftconv._core.problem.within_reach`), made once
    for the whole image: a 31-slice PSF over a 5-slice stack keeps 9 slices, and
    no block is padded by the other 22.  Where a dropped tap would still count
    (a non-zero or non-finite ``cval``, other boundaries' extensions,
    ``interpolate``'s weights, in which the outside is known, or a non-finite
    tap) the kernel stays whole.
    """
    if (request.boundary != "constant" or request.cval != 0 or request.nan_policy == "interpolate"
            or has_nonfinite(request.kernel)):
        return request
    cut = within_reach(LinearProblem(request.image, request.kernel, request.axes,
                                     request.windows))
    return request.replace(kernel=np.ascontiguousarray(cut.kernel), windows=cut.windows)


def apply_convolver(convolver, image):
    o = convolver.options
    return convolve(image, convolver.kernel, o["mode"], o["boundary"], o["cval"], o["axes"],
                    o["method"], convolver.settings.backend, convolver.settings.workers,
                    o["nan_policy"], o["dtype"], flip=convolver.correlate)


def window_sums(array, kernel: np.ndarray, mode, boundary, cval, axes, dtype):
    """:func:`fftconv.window_sum` of a dask array: the halo tiling, window sums per block."""
    return convolve(array, kernel, mode, boundary, cval, axes, "direct", None, None,
                    "propagate", dtype, flip=False, block=window_block)
