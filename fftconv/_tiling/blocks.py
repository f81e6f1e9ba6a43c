"""One output block computed: its pieces joined, convolved ``valid`` in memory.

Each task runs here, on a worker: the settings frozen when the graph was built
are re-applied, the block is planned like an in-memory call, and a plain real
FFT runs in this thread's reused buffers when the backend transforms into
given arrays (:mod:`.workspace`), a strip of rows at a time when it also runs
its complex passes in place.
"""

from __future__ import annotations

import math

import numpy as np

from fftconv._core import settings as _config
from fftconv._core.nonfinite import has_nonfinite
from fftconv._core.request import build_request
from fftconv._infra.cache import Cache
from fftconv._methods.box import window_sums
from fftconv._methods.spectra import SpectrumCache, spectrum_for
from fftconv._methods.transform import Transform, window_slices
from fftconv._planning import run_request, static_plan
from fftconv._tiling import workspace
from fftconv._tiling.join import join_into, join_starts, leaves

_caches = Cache("Dask worker spectra", entries=16, idle_seconds=workspace.IDLE_SECONDS)


def worker_spectra(token: str) -> SpectrumCache:
    """One spectrum cache per kernel per worker process (tasks of one graph share it).

    Dropped once idle (:mod:`fftconv._tiling.workspace`): it serves one computation,
    the worker process outlives it.
    """
    return _caches.get_or_make(token, lambda: SpectrumCache(entries=4, max_bytes=None,
                                                            name=f"kernel spectra {token}"))


def convolve_block(parts, kernel: np.ndarray, token: str, axes, method: str, nan_policy: str,
           dtype, settings: dict) -> np.ndarray:
    """One output block: join its pieces (chunk cuts and halo strips), convolve ``valid``.

    When one FFT will convolve the block, the pieces are joined straight into
    the transform's zero-padded shape, so the backend pads nothing: one copy of
    the tile fewer, and a tile's worth less memory per task.  The zeros past the
    tile are the constant-0 boundary the ``valid`` window never reads.  When the
    backend also transforms into given arrays, that padded tile and its spectrum
    are this thread's reused buffers (:mod:`fftconv._tiling.workspace`); when it also
    runs its complex passes in place, the tile is never joined whole: it is
    joined and transformed a strip of rows at a time (:func:`convolve_by_rows`).
    """
    with _config.set(**settings):
        resolved = _config.resolve()
        starts = join_starts(parts)
        shape = tuple(int(s[-1]) for s in starts)
        stand_in = np.broadcast_to(np.zeros((), dtype=dtype), shape)
        request = build_request(stand_in, kernel, "valid", "constant", 0.0, tuple(axes),
                                method, nan_policy, dtype, flip=False)
        cache = worker_spectra(token)
        plan = static_plan(request, resolved, cache)
        padded = list(shape)
        if plan is not None and plan.method == "fft":
            for ax, n in zip(request.axes, plan.fft_shape):
                padded[ax] = max(n, shape[ax])
        transform = in_place_transform(request, plan, tuple(padded))
        by_rows = transform is not None and transforms_by_rows(transform)
        if by_rows and not any(has_nonfinite(leaf) for _, leaf in leaves(parts)):
            return convolve_by_rows(transform, parts, starts, tuple(padded), request, cache)
        if transform is None:
            # This thread's reused buffer too: a fresh one per tile cost page faults,
            # half the filter's time for a 1024² tile ⊛ a 5² kernel.
            piece = join_into(parts, starts, workspace.joined(tuple(padded), request.dtype))
        elif by_rows:
            piece = join_into(parts, starts, np.empty(padded, dtype=request.dtype))
        else:
            piece, spectrum = workspace.buffers(tuple(padded),
                                                 spectrum_shape(padded, request.axes),
                                                 request.dtype)
            join_into(parts, starts, piece)
            if not has_nonfinite(piece):
                return convolve_in_place(transform, piece, spectrum, request, cache)
        out = run_request(request.replace(image=piece), resolved, cache)
        # No route hands back a view of its input; if one did, the next tile would
        # overwrite this result in the reused buffer: it is copied out.
        return out.copy() if np.may_share_memory(out, piece) else out


def whole_block(block: np.ndarray, kernel: np.ndarray, shape, mode: str, boundary: str, cval,
                axes, method: str, nan_policy: str, dtype, settings: dict) -> np.ndarray:
    """One output block of an image whole along every convolved axis, by the in-memory
    engine with the real boundary rule: its extension is never built where the
    route needs none (a box far larger than the image).

    ``kernel`` is in convolution orientation; with ``shape``, it is the one value
    of a kernel broadcast to ``shape`` (sent to the worker as one value, not as
    the array pickling would make of it).
    """
    if shape is not None:
        kernel = np.broadcast_to(kernel, shape)
    with _config.set(**settings):
        request = build_request(block, kernel, mode, boundary, cval, tuple(axes), method,
                                nan_policy, dtype, flip=False)
        return run_request(request, _config.resolve())


def window_block(parts, kernel: np.ndarray, token: str, axes, method: str, nan_policy: str,
                 dtype, settings: dict) -> np.ndarray:
    """One output block of :func:`fftconv.window_sum`: its pieces joined, every full window summed.

    The windows are the kernel's shape; the sums run in float64 as in memory.
    """
    starts = join_starts(parts)
    piece = join_into(parts, starts, np.empty([int(s[-1]) for s in starts], dtype=dtype))
    with _config.set(**settings):
        return window_sums(piece, kernel, "valid", "constant", 0.0, tuple(axes), dtype)


def spectrum_shape(padded, axes) -> tuple[int, ...]:
    """The real transform's spectrum of an array of shape ``padded`` over ``axes``."""
    half = list(padded)
    half[axes[-1]] = padded[axes[-1]] // 2 + 1
    return tuple(half)


def in_place_transform(request, plan, padded: tuple[int, ...]):
    """The transform that convolves this block in the thread's buffers, or None.

    Only what :func:`fftconv._planning.engine.compute` runs as one plain real FFT
    (``plan``, from :func:`fftconv._planning.engine.static_plan`) qualifies, on a
    backend that declares ``real_into``: never a non-finite kernel or a kernel
    broadcast over an image axis.  Non-finite data is checked per block.
    """

    if (plan is None or plan.method != "fft" or request.dtype.kind != "f"
            or not plan.backend.capabilities.real_into
            or any(padded[ax] != n for ax, n in zip(request.axes, plan.fft_shape))
            or any(request.kernel.shape[ax] not in (1, padded[ax])
                   for ax in range(len(padded)) if ax not in request.axes)
            or has_nonfinite(request.kernel)):
        return None
    return Transform(plan.backend, plan.fft_shape, request.axes, True, request.dtype,
                     plan.threads)


def convolve_in_place(transform, real: np.ndarray, spectrum: np.ndarray, request,
                       cache: SpectrumCache) -> np.ndarray:
    """``fftconv._methods.fft.run`` in the given buffers: ``real`` is overwritten."""

    backend, axes = transform.backend, transform.axes
    backend.rfftn_into(real, spectrum, axes, transform.workers)
    # In place: in_place_transform admits only kernels that do not broadcast the spectrum.
    spectrum = transform.multiply(spectrum, spectrum_for(cache, transform, request.kernel))
    backend.irfftn_into(spectrum, real, axes, transform.workers)
    window = window_slices(real.ndim, axes, [a for a, _ in request.windows],
                           [b for _, b in request.windows])
    return np.array(real[window])  # a copy: the buffer serves the next tile


# A strip of rows transformed at a time: within the L3 cache.  Measured on a 2248² tile
# (one thread): 89 ms at 2 MiB, like the whole tile; 94 ms at 512 KiB (more calls).
ROW_BYTES = 1 << 21


def transforms_by_rows(transform) -> bool:
    """Whether :func:`convolve_by_rows` runs ``transform``: complex passes in place too.

    Only with one FFT thread per task (the default): each strip is a call of its
    own, and with several threads per call the strips cost more than they save
    (a 2248² tile on two threads: 66 ms against 59 whole).
    """
    backend = transform.backend
    return (len(transform.axes) > 1 and transform.workers == 1
            and backend.capabilities.complex_into)


def convolve_by_rows(transform, parts, starts, padded: tuple[int, ...], request,
                      cache: SpectrumCache) -> np.ndarray:
    """``fftconv._methods.fft.run`` a strip of rows at a time: no buffer of the whole tile.

    The real pass (over the last transformed axis) runs strip by strip along the
    first, each strip joined from the pieces into a small buffer, into this
    thread's spectrum buffer; the complex passes over the other axes run on it
    in place.  After the product the same passes run backwards, and each
    strip's share of the ``valid`` window is copied out.  These are the passes
    the whole-tile transform makes, in the same order, so the result is the
    same; what goes is a tile-sized real buffer per thread, and each strip is
    joined and transformed while it is still in cache.
    """

    backend, axes, workers = transform.backend, transform.axes, transform.workers
    lead, last, ndim = axes[0], axes[-1], len(padded)
    spectrum, rows = forward_by_rows(transform, parts, starts, padded, request.dtype)
    step = rows.shape[lead]

    def along_lead(start: int, stop: int) -> tuple[slice, ...]:
        return window_slices(ndim, (lead,), (start,), (stop,))

    # In place: in_place_transform admits only kernels that do not broadcast the spectrum.
    spectrum = transform.multiply(spectrum, spectrum_for(cache, transform, request.kernel))
    backend.ifftn_into(spectrum, spectrum, axes[:-1], workers)
    window = list(window_slices(ndim, axes, [a for a, _ in request.windows],
                                [b for _, b in request.windows]))
    start, stop = request.windows[0]
    out = np.empty([len(range(*w.indices(n))) for w, n in zip(window, padded)],
                   dtype=request.dtype)
    for r0 in range(start, stop, step):
        r1 = min(stop, r0 + step)
        real = rows[along_lead(0, r1 - r0)]
        backend.irfftn_into(spectrum[along_lead(r0, r1)], real, (last,), workers)
        window[lead] = slice(0, r1 - r0)
        out[along_lead(r0 - start, r1 - start)] = real[tuple(window)]
    return out


def forward_by_rows(transform, parts, starts, padded: tuple[int, ...], dtype):
    """The spectrum of the pieces joined, zeros up to ``padded``, without joining them whole.

    Each strip of rows along the first transformed axis is joined into a small
    buffer and given its real pass (over the last axis) into this thread's
    spectrum buffer; the complex passes over the other axes then run on it in
    place.  For a transform :func:`transforms_by_rows` admits.  Returns the spectrum and
    the strip buffer (both this thread's, reused by its next task).
    """

    backend, axes, workers = transform.backend, transform.axes, transform.workers
    lead, last, ndim = axes[0], axes[-1], len(padded)
    strip = list(padded)
    row_bytes = math.prod(strip) // strip[lead] * np.dtype(dtype).itemsize
    strip[lead] = max(1, min(padded[lead], ROW_BYTES // max(1, row_bytes)))
    rows, spectrum = workspace.buffers(tuple(strip), spectrum_shape(padded, axes), dtype)
    step, covered = strip[lead], int(starts[lead][-1])  # rows past `covered` are zeros
    for r0 in range(0, padded[lead], step):
        r1 = min(padded[lead], r0 + step)
        target = spectrum[window_slices(ndim, (lead,), (r0,), (r1,))]
        if r0 >= covered:
            target[...] = 0
            continue
        real = join_into(parts, starts, rows[window_slices(ndim, (lead,), (0,), (r1 - r0,))],
                          lead, r0)
        backend.rfftn_into(real, target, (last,), workers)
    backend.fftn_into(spectrum, spectrum, axes[:-1], workers)
    return spectrum, rows
