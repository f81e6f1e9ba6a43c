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
import functools
import itertools
import math

import dask
import dask.array as da
import numpy as np

from fftconv._core import settings as _config
from fftconv._core.boundary import source_index
from fftconv._core.nonfinite import has_nonfinite
from fftconv._core.problem import LinearProblem, within_reach
from fftconv._core.request import build_request
from fftconv._core.shapes import extension
from fftconv._methods.spectra import SpectrumCache, spectrum_for
from fftconv._tiling import workspace as _workspace

_caches = _workspace.Idle(limit=16)


def _worker_cache(token: str) -> SpectrumCache:
    """One spectrum cache per kernel per worker process (tasks of one graph share it).

    Dropped once idle (:mod:`fftconv._tiling.workspace`): it serves one computation,
    the worker process outlives it.
    """
    return _caches.get(token, lambda: SpectrumCache(entries=4, max_bytes=None))


def _out_chunks(in_chunks: tuple[int, ...], length: int) -> tuple[int, ...]:
    """Output chunks that follow the input's as far as the output's length allows."""
    out, total = [], 0
    for c in in_chunks:
        if total + c >= length:
            break
        out.append(c)
        total += c
    out.append(length - total)
    return tuple(c for c in out if c > 0)


# Blocks are at least this many pixels (over the convolved axes), merging small chunks:
# each block costs its tasks, its halo and its neighbours' second reads.  A 4096² zarr
# image in 64² chunks ⊛ 101², reflect: 33.5 s a block per chunk, 13.2 s in 1024² blocks
# (the rest is zarr's); estimate_kernel's passes at 8192² in 256² chunks: 8.6-11.5 s,
# against 5.5-8.3 s.
BLOCK_ELEMENTS = 1 << 20
# Blocks grow along an axis whose halo is more than half of them, up to this many
# pixels (64 MiB of float32).  A (64, 1024, 1024) float32 zarr stack stored a plane a
# chunk ⊛ gaussian:sigma=1,2,2 (9 × 17 × 17 taps), on the command line: a block a plane
# (each reading 9) took 3.5-3.6 s at 752-756 MiB, blocks of 16 planes 2.0-2.1 s at
# 767-779 MiB.  (Past a quarter, a 16384² image in 2048² chunks ⊛ a 1001² disk ran in
# 4096² blocks: 6.0 s at 891 MiB against 6.8 s at 800 MiB.)
MOST_BLOCK_ELEMENTS = 1 << 24


def merged(chunks: tuple[tuple[int, ...], ...], axes=None,
           elements: int | None = None, halos: dict[int, int] | None = None,
           ) -> tuple[tuple[int, ...], ...]:
    """``chunks`` with neighbours merged along ``axes`` (default all) to about ``elements``.

    Blocks reach ``elements`` (default :data:`BLOCK_ELEMENTS`) over ``axes``
    (see :func:`block_lengths`), and with ``halos`` (each axis's kernel length
    less one) grow where the halo is long against them (:func:`halo_lengths`);
    no chunk is split.

    Examples
    --------
    >>> merged(((256,) * 9 + (100,), (300, 300)), elements=1 << 20)
    ((1024, 1380), (600,))
    >>> merged(((256,) * 9 + (100,), (3, 3)), axes=(0,), elements=1 << 10)
    ((1024, 1380), (3, 3))

    A stack of 2048² planes in chunks of 16 already holds that many: its
    planes are not merged into blocks of 112 (1.8 GiB of float32 each).

    >>> merged(((16,) * 12 + (8,), (2048,) * 2, (2048,) * 2), elements=1 << 20)[0][:2]
    (16, 16)
    """
    axes = range(len(chunks)) if axes is None else axes
    elements = BLOCK_ELEMENTS if elements is None else elements
    sizes = {ax: max(chunks[ax]) for ax in axes}
    lengths = block_lengths(sizes, elements)
    if halos:
        lengths = halo_lengths(lengths, sizes, halos, {ax: sum(chunks[ax]) for ax in axes})
    out = []
    for ax, axis in enumerate(chunks):
        if ax not in axes:
            out.append(axis)
            continue
        length = lengths[ax]
        groups, total = [], 0
        for c in axis:
            total += c
            if total >= length:
                groups.append(total)
                total = 0
        if total and groups and total < length // 2:
            groups[-1] += total  # no sliver of a block at the end
        elif total:
            groups.append(total)
        out.append(tuple(groups))
    return tuple(out)


def block_lengths(sizes: dict[int, int], elements: int) -> dict[int, int]:
    """Per axis, the length merged blocks reach: ``elements`` over all, no chunk split.

    ``sizes`` is each axis's chunk length.  The shorter axes share what the
    longer ones leave equally: an axis whose chunks are already longer than its
    share keeps them (its length is that share, which they exceed), and the
    others reach ``elements`` with it, not alone.

    Examples
    --------
    >>> block_lengths({0: 64, 1: 64}, 1 << 20)
    {0: 1024, 1: 1024}

    Planes of 256² in chunks of one: 16 planes make a block (the planes' axes
    get shares their chunks already exceed).

    >>> block_lengths({0: 1, 1: 256, 2: 256}, 1 << 20)
    {1: 102, 2: 64, 0: 16}
    """
    remaining = sorted(sizes, key=sizes.__getitem__, reverse=True)
    lengths: dict[int, int] = {}
    budget = float(elements)
    while remaining:
        share = math.ceil(budget ** (1 / len(remaining)) - 1e-9)
        if sizes[remaining[0]] < share:  # the longest is short of its share: all are
            return lengths | dict.fromkeys(remaining, share)
        ax = remaining.pop(0)
        lengths[ax] = share
        budget /= sizes[ax]
    return lengths


def halo_lengths(lengths: dict[int, int], sizes: dict[int, int], halos: dict[int, int],
                 extents: dict[int, int]) -> dict[int, int]:
    """``lengths`` (from :func:`block_lengths`) doubled along axes whose halo is long.

    A block reads its halo on top of itself: along an axis where the halo is
    over half the block, the block is doubled (the axis with the longest halo
    against its block first), while the block stays within
    :data:`MOST_BLOCK_ELEMENTS` and the axis's ``extents``.

    Examples
    --------
    A stack a plane a chunk, with a kernel 9 planes deep: 16 planes a block.

    >>> halo_lengths({0: 1, 1: 1024, 2: 1024}, {0: 1, 1: 1024, 2: 1024}, {0: 8, 1: 16, 2: 16},
    ...              {0: 64, 1: 1024, 2: 1024})
    {0: 16, 1: 1024, 2: 1024}
    """
    lengths = dict(lengths)

    def block(ax: int) -> int:  # chunks longer than the length are whole blocks
        return max(lengths[ax], sizes[ax])

    while True:
        grow = [ax for ax in lengths if 2 * halos.get(ax, 0) > block(ax) < extents[ax]]
        if not grow:
            return lengths
        ax = max(grow, key=lambda a: halos[a] / block(a))
        longer = min(2 * block(ax), extents[ax])
        if longer * math.prod(block(a) for a in lengths if a != ax) > MOST_BLOCK_ELEMENTS:
            return lengths
        lengths[ax] = longer


def fast_tiles(chunks: tuple[int, ...], k: int, fast_len) -> tuple[int, ...]:
    """``tile="auto"``: chunk lengths near the current ones whose tile + halo is a fast length."""
    n = sum(chunks)
    target = max(chunks)
    best = fast_len(target + k - 1) - (k - 1)
    if best <= 0:
        best = target
    full, rest = divmod(n, best)
    return (best,) * full + ((rest,) if rest else ())


def _block(parts, kernel: np.ndarray, token: str, axes, method: str, nan_policy: str,
           dtype, settings: dict) -> np.ndarray:
    """One output block: join its pieces (chunk cuts and halo strips), convolve ``valid``.

    When one FFT will convolve the block, the pieces are joined straight into
    the transform's zero-padded shape, so the backend pads nothing: one copy of
    the tile fewer, and a tile's worth less memory per task.  The zeros past the
    tile are the constant-0 boundary the ``valid`` window never reads.  When the
    backend also transforms into given arrays, that padded tile and its spectrum
    are this thread's reused buffers (:mod:`fftconv._tiling.workspace`); when it also
    runs its complex passes in place, the tile is never joined whole: it is
    joined and transformed a strip of rows at a time (:func:`_convolve_by_rows`).
    """
    from fftconv._ops.api import run_request, static_plan

    with _config.set(**settings):
        resolved = _config.resolve()
        starts = _join_starts(parts)
        shape = tuple(int(s[-1]) for s in starts)
        stand_in = np.broadcast_to(np.zeros((), dtype=dtype), shape)
        request = build_request(stand_in, kernel, "valid", "constant", 0.0, tuple(axes),
                                method, nan_policy, dtype, flip=False)
        cache = _worker_cache(token)
        plan = static_plan(request, resolved, cache)
        padded = list(shape)
        if plan is not None and plan.method == "fft":
            for ax, n in zip(request.axes, plan.fft_shape):
                padded[ax] = max(n, shape[ax])
        transform = _in_place_transform(request, plan, tuple(padded))
        by_rows = transform is not None and _by_rows(transform)
        if by_rows and not any(has_nonfinite(leaf) for _, leaf in _leaves(parts)):
            return _convolve_by_rows(transform, parts, starts, tuple(padded), request, cache)
        if transform is None:
            # This thread's reused buffer too: a fresh one per tile cost page faults,
            # half the filter's time for a 1024² tile ⊛ a 5² kernel.
            piece = _join_into(parts, starts, _workspace.joined(tuple(padded), request.dtype))
        elif by_rows:
            piece = _join_into(parts, starts, np.empty(padded, dtype=request.dtype))
        else:
            piece, spectrum = _workspace.buffers(tuple(padded),
                                                 _spectrum_shape(padded, request.axes),
                                                 request.dtype)
            _join_into(parts, starts, piece)
            if not has_nonfinite(piece):
                return _convolve_in_place(transform, piece, spectrum, request, cache)
        out = run_request(request.replace(image=piece), resolved, cache)
        # No route hands back a view of its input; if one did, the next tile would
        # overwrite this result in the reused buffer: it is copied out.
        return out.copy() if np.may_share_memory(out, piece) else out


def window_block(parts, kernel: np.ndarray, token: str, axes, method: str, nan_policy: str,
                 dtype, settings: dict) -> np.ndarray:
    """One output block of :func:`fftconv.window_sum`: its pieces joined, every full window summed.

    The windows are the kernel's shape; the sums run in float64 as in memory.
    """
    from fftconv._ops.window import window_sum

    starts = _join_starts(parts)
    piece = _join_into(parts, starts, np.empty([int(s[-1]) for s in starts], dtype=dtype))
    with _config.set(**settings):
        return window_sum(piece, [kernel.shape[ax] for ax in axes], "valid", axes=axes,
                          dtype=dtype)


def _spectrum_shape(padded, axes) -> tuple[int, ...]:
    """The real transform's spectrum of an array of shape ``padded`` over ``axes``."""
    half = list(padded)
    half[axes[-1]] = padded[axes[-1]] // 2 + 1
    return tuple(half)


def _in_place_transform(request, plan, padded: tuple[int, ...]):
    """The transform that convolves this block in the thread's buffers, or None.

    Only what :func:`fftconv._ops.api.compute` runs as one plain real FFT (``plan``,
    from :func:`fftconv._ops.api.static_plan`) qualifies, on a backend with
    ``rfftn_into`` / ``irfftn_into``: never a non-finite kernel or a kernel
    broadcast over an image axis.  Non-finite data is checked per block.
    """
    from fftconv._methods.transform import Transform

    if (plan is None or plan.method != "fft" or request.dtype.kind != "f"
            or not (hasattr(plan.backend, "rfftn_into") and hasattr(plan.backend, "irfftn_into"))
            or any(padded[ax] != n for ax, n in zip(request.axes, plan.fft_shape))
            or any(request.kernel.shape[ax] not in (1, padded[ax])
                   for ax in range(len(padded)) if ax not in request.axes)
            or has_nonfinite(request.kernel)):
        return None
    return Transform(plan.backend, plan.fft_shape, request.axes, True, request.dtype,
                     plan.threads)


def _convolve_in_place(transform, real: np.ndarray, spectrum: np.ndarray, request,
                       cache: SpectrumCache) -> np.ndarray:
    """``fftconv._methods.fft.run`` in the given buffers: ``real`` is overwritten."""
    from fftconv._methods.transform import window_slices

    backend, axes = transform.backend, transform.axes
    backend.rfftn_into(real, spectrum, axes, transform.workers)
    # In place: _in_place_transform admits only kernels that do not broadcast the spectrum.
    spectrum = transform.multiply(spectrum, spectrum_for(cache, transform, request.kernel))
    backend.irfftn_into(spectrum, real, axes, transform.workers)
    window = window_slices(real.ndim, axes, [a for a, _ in request.windows],
                           [b for _, b in request.windows])
    return np.array(real[window])  # a copy: the buffer serves the next tile


# A strip of rows transformed at a time: within the L3 cache.  Measured on a 2248² tile
# (one thread): 89 ms at 2 MiB, like the whole tile; 94 ms at 512 KiB (more calls).
ROW_BYTES = 1 << 21


def _by_rows(transform) -> bool:
    """Whether :func:`_convolve_by_rows` runs ``transform``: complex passes in place too.

    Only with one FFT thread per task (the default): each strip is a call of its
    own, and with several threads per call the strips cost more than they save
    (a 2248² tile on two threads: 66 ms against 59 whole).
    """
    backend = transform.backend
    return (len(transform.axes) > 1 and transform.workers == 1
            and hasattr(backend, "fftn_into") and hasattr(backend, "ifftn_into"))


def _convolve_by_rows(transform, parts, starts, padded: tuple[int, ...], request,
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
    from fftconv._methods.transform import window_slices

    backend, axes, workers = transform.backend, transform.axes, transform.workers
    lead, last, ndim = axes[0], axes[-1], len(padded)
    spectrum, rows = forward_by_rows(transform, parts, starts, padded, request.dtype)
    step = rows.shape[lead]

    def along_lead(start: int, stop: int) -> tuple[slice, ...]:
        return window_slices(ndim, (lead,), (start,), (stop,))

    # In place: _in_place_transform admits only kernels that do not broadcast the spectrum.
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
    place.  For a transform :func:`_by_rows` admits.  Returns the spectrum and
    the strip buffer (both this thread's, reused by its next task).
    """
    from fftconv._methods.transform import window_slices

    backend, axes, workers = transform.backend, transform.axes, transform.workers
    lead, last, ndim = axes[0], axes[-1], len(padded)
    strip = list(padded)
    row_bytes = math.prod(strip) // strip[lead] * np.dtype(dtype).itemsize
    strip[lead] = max(1, min(padded[lead], ROW_BYTES // max(1, row_bytes)))
    rows, spectrum = _workspace.buffers(tuple(strip), _spectrum_shape(padded, axes), dtype)
    step, covered = strip[lead], int(starts[lead][-1])  # rows past `covered` are zeros
    for r0 in range(0, padded[lead], step):
        r1 = min(padded[lead], r0 + step)
        target = spectrum[window_slices(ndim, (lead,), (r0,), (r1,))]
        if r0 >= covered:
            target[...] = 0
            continue
        real = _join_into(parts, starts, rows[window_slices(ndim, (lead,), (0,), (r1 - r0,))],
                          lead, r0)
        backend.rfftn_into(real, target, (last,), workers)
    backend.fftn_into(spectrum, spectrum, axes[:-1], workers)
    return spectrum, rows


def _leaves(parts, index=()):
    if isinstance(parts, list):
        for i, child in enumerate(parts):
            yield from _leaves(child, (*index, i))
    else:
        yield index, parts


def _join_starts(parts) -> list[np.ndarray]:
    """Per axis, where each piece of the nested list ``parts`` starts (as np.block joins them)."""
    leaves = dict(_leaves(parts))
    ndim = len(next(iter(leaves)))
    starts = []
    for d in range(ndim):
        count = 1 + max(index[d] for index in leaves)
        sizes = [leaves[tuple(i if e == d else 0 for e in range(ndim))].shape[d]
                 for i in range(count)]
        starts.append(np.cumsum((0, *sizes)))
    return starts


def _join_into(parts, starts, out: np.ndarray, axis: int = 0, offset: int = 0) -> np.ndarray:
    """``np.block(parts)`` written into the corner of ``out``, zeros around it.

    ``out`` may hold only the rows ``offset`` to ``offset + out.shape[axis]``
    along ``axis``: then only the pieces' share of those rows is written.
    """
    stop = offset + out.shape[axis]
    for d, s in enumerate(starts):  # zero only what the pieces leave uncovered
        end = int(s[-1]) - (offset if d == axis else 0)
        out[(slice(None),) * d + (slice(max(end, 0), None),)] = 0
    for index, leaf in _leaves(parts):
        source, target = [], []
        for d, (s, i, n) in enumerate(zip(starts, index, leaf.shape)):
            a = int(s[i])
            lo, hi = (max(a, offset), min(a + n, stop)) if d == axis else (a, a + n)
            shift = offset if d == axis else 0
            source.append(slice(lo - a, hi - a))
            target.append(slice(lo - shift, hi - shift))
        if all(t.stop > t.start for t in target):
            out[tuple(target)] = leaf[tuple(source)]
    return out


def frozen_settings(backend=None, workers=None) -> dict:
    """Every setting in effect now, for tasks to re-apply: one FFT thread unless ``workers``."""
    settings = _config.resolve(backend=backend, workers=workers or 1)
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def converts_in_blocks(dtype: np.dtype, request) -> bool:
    """Whether blocks may take the input's chunks in ``dtype`` and convert them as they join.

    Without an ``astype`` layer a store read stays a plain read, which the halo
    strips can re-read (:func:`_reread`): a uint16 zarr image keeps the memory
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


def check_known_chunks(array: da.Array, name: str = "image") -> None:
    if any(math.isnan(c) for chunks in array.chunks for c in chunks):
        raise ValueError(f"{name} has unknown chunk sizes (as after boolean indexing); the "
                         f"halo tiling needs them: call {name}.compute_chunk_sizes() first")


def convolve(image, kernel, mode, boundary, cval, axes, method, backend, workers, nan_policy,
             dtype, *, flip: bool, tile=None, block=None, windows=None):
    """The lazy counterpart of :func:`fftconv.convolve` for a dask array ``image``.

    ``block`` computes each output block (default :func:`_block`, a ``valid``
    convolution); it takes ``_block``'s arguments.  ``windows`` replaces the
    mode's: per convolved axis (in sorted order), the ``[start, stop)`` of the
    full convolution to return (the adjoints take windows no mode gives).
    """
    check_known_chunks(image)
    kernel = np.asarray(kernel.compute() if isinstance(kernel, da.Array) else kernel)
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
        from fftconv._registry.discovery import load_backend

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
    for ax, (a, b) in zip(request.axes, request.windows):
        out_chunks[ax] = _out_chunks(image.chunks[ax] if tile is None else out_chunks[ax],
                                     b - a)
    for ax in range(x.ndim):
        if ax not in request.axes:
            out_chunks[ax] = (max(x.shape[ax], k.shape[ax]),) if k.shape[ax] > 1 and \
                x.shape[ax] == 1 else x.chunks[ax]
    out_chunks = tuple(out_chunks)
    blocks = out_chunks if tile == "auto" else merged(out_chunks, request.axes, halos=halos)
    kernel_key = dask.delayed(k, pure=True)
    token = dask.base.tokenize(k, request.dtype.str)
    result = _assemble(x, k, request, blocks, pads, kernel_key, token, method, nan_policy,
                       frozen, block or _block)
    return result if blocks == out_chunks else result.rechunk(out_chunks)


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


@dataclasses.dataclass(frozen=True)
class Repeat:
    """A selector that repeats one index ``count`` times (``nearest``'s edges), as a view.

    Not a tuple: dask would read a tuple inside a task's arguments as a task or a key.
    """

    index: int
    count: int


# One axis's share of a block's region: the input chunk it comes from (None: the constant
# boundary), the selector into that chunk (a slice, reversed for a reflection, a Repeat,
# or an index array), and the length it covers.
Piece = tuple[int | None, slice | Repeat | np.ndarray | None, int]


def whole_short_axes(x: da.Array, kernel_shape, axes) -> da.Array:
    """``x`` in one chunk along each of ``axes`` shorter than the kernel.

    A block's region along such an axis is longer than the axis, and an
    extension wider than the image turns at each of its edges: in many chunks,
    that made a piece per chunk per turn (61787 tasks for a 4 × 6 image in 2²
    chunks ⊛ 101², ``full``, against 31 in one chunk).
    """
    short = {ax: -1 for ax in axes if x.shape[ax] < kernel_shape[ax] and len(x.chunks[ax]) > 1}
    return x.rechunk(short) if short else x


def _spans(chunks: tuple[int, ...], start: int, stop: int) -> list[Piece]:
    """The chunks overlapping ``[start, stop)``, each with the part of it inside."""
    bounds = np.cumsum((0, *chunks))
    first = int(np.searchsorted(bounds, start, side="right")) - 1
    last = int(np.searchsorted(bounds, stop, side="left")) - 1
    spans = []
    for i in range(first, last + 1):
        lo, hi = max(start, int(bounds[i])), min(stop, int(bounds[i + 1]))
        spans.append((i, slice(lo - int(bounds[i]), hi - int(bounds[i])), hi - lo))
    return spans


def _runs(src: np.ndarray) -> list[tuple[int, int]]:
    """``src`` split into ``[start, stop)`` runs of one step, -1, 0 or 1 (the -1s on their own).

    An extension's sources run forwards (the image, ``wrap``), backwards (a
    reflection) or stand still (``nearest``); -1 marks the constant.
    """
    runs, p, n = [], 0, len(src)
    steps, outside = np.diff(src), src < 0
    while p < n:
        q = p + 1
        if q < n and outside[q] == outside[p] and abs(int(steps[p])) <= 1:
            ends = np.flatnonzero((steps[p:] != steps[p]) | (outside[p + 1:] != outside[p]))
            q = p + 1 + (int(ends[0]) if len(ends) else n - 1 - p)
        runs.append((p, q))
        p = q
    return runs


def axis_pieces(src: np.ndarray, chunks: tuple[int, ...]) -> list[Piece]:
    """The pieces of an extended axis whose positions copy the input positions ``src``.

    ``src`` is a range of :func:`fftconv._core.boundary.source_index` (-1: the
    constant).  Each of its runs becomes pieces split at the bounds of
    ``chunks``: views of them.  An extension wider than the image has many
    runs (a reflection turns at every edge); then each chunk gives one piece,
    an index array, rather than a piece per run.
    """
    bounds = np.cumsum((0, *chunks))
    runs = _runs(src)
    if len(runs) > 3:  # left edge, image, right edge: a wider extension turns more often
        runs = _chunk_runs(src, bounds)
    pieces: list[Piece] = []
    for a, b in runs:
        run = src[a:b]
        if run[0] < 0:
            pieces.append((None, None, b - a))
            continue
        which = np.searchsorted(bounds, run, side="right") - 1
        cuts = np.flatnonzero(np.diff(which)) + 1
        for part, chunk in zip(np.split(run, cuts), which[np.r_[0, cuts]]):
            pieces.append((int(chunk), _selector(part - int(bounds[chunk])), len(part)))
    return pieces


def _chunk_runs(src: np.ndarray, bounds: np.ndarray) -> list[tuple[int, int]]:
    """``src`` split where the chunk it reads changes (the constant's -1s are a chunk)."""
    which = np.where(src < 0, -1, np.searchsorted(bounds, src, side="right") - 1)
    edges = [0, *(np.flatnonzero(np.diff(which)) + 1).tolist(), len(src)]
    return list(itertools.pairwise(edges))


def _selector(local: np.ndarray) -> slice | Repeat | np.ndarray:
    """The selector of positions ``local`` of a chunk: a view if a slice or a Repeat will do."""
    n, lo = len(local), int(local[0])
    steps = np.unique(np.diff(local))
    if n == 1 or (len(steps) == 1 and steps[0] == 1):
        return slice(lo, lo + n)
    if len(steps) == 1 and steps[0] == -1:
        return slice(lo, lo - n if lo >= n else None, -1)
    if len(steps) == 1 and steps[0] == 0:
        return Repeat(lo, n)
    return local


def _view(chunk: np.ndarray, cut: tuple) -> np.ndarray:
    """``chunk`` cut by the selectors ``cut``: a view, unless an index array takes (a copy).

    A Repeat broadcasts its one index.
    """
    basic = tuple(slice(c.index, c.index + 1) if isinstance(c, Repeat)
                  else slice(None) if isinstance(c, np.ndarray) else c for c in cut)
    piece = chunk[basic]
    for ax, c in enumerate(cut):
        if isinstance(c, np.ndarray):
            piece = np.take(piece, c, axis=ax)
    shape = tuple(c.count if isinstance(c, Repeat) else n for c, n in zip(cut, piece.shape))
    return piece if shape == piece.shape else np.broadcast_to(piece, shape)


def _cut(chunk: np.ndarray, cut: tuple) -> np.ndarray:
    """A copy of a piece of ``chunk`` (a Repeat stays a view of the copy), so it can be released."""
    piece = _view(chunk, cut)
    if not any(isinstance(c, Repeat) for c in cut):
        return np.array(piece) if np.may_share_memory(piece, chunk) else piece
    basic = tuple(slice(0, 1) if isinstance(c, Repeat) else slice(None) for c in cut)
    return np.broadcast_to(np.array(piece[basic]), piece.shape)


def _constant(shape: tuple[int, ...], value, dtype) -> np.ndarray:
    """A piece of the constant boundary: ``value`` broadcast, one element of memory."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), shape)


def _block_plans(x, k, request, out_chunks, pads: dict) -> dict:
    """Per output block, per axis, the pieces (:data:`Piece`) of ``x`` its region reads.

    The region is the block's window of the full result plus the kernel's
    reach, in the coordinates of ``x`` extended by ``pads``; the extension is
    never built: its pieces point into the chunks it copies.
    """
    starts = [np.cumsum((0, *c[:-1])) for c in out_chunks]
    # The extension starts at the window's first read, a - (k - 1), unless the window
    # starts past the kernel's reach (custom windows): then that many samples in.
    skip = {ax: max(0, a - (k.shape[ax] - 1)) for ax, (a, _) in zip(request.axes,
                                                                     request.windows)}
    sources = {ax: source_index(x.shape[ax], pad, request.boundary) for ax, pad in pads.items()}

    def along(ax: int, i: int) -> list[Piece]:
        j0 = int(starts[ax][i])
        j1 = j0 + out_chunks[ax][i]
        if ax in sources:
            return axis_pieces(sources[ax][j0 + skip[ax]:j1 + skip[ax] + k.shape[ax] - 1],
                               x.chunks[ax])
        return _spans(x.chunks[ax], *((0, 1) if x.shape[ax] == 1 else (j0, j1)))

    return plans_of(out_chunks, along)


def plans_of(out_chunks, along) -> dict:
    """Per block of ``out_chunks``, per axis, ``along(axis, block's index on it)``.

    The blocks of one row share that axis's pieces: each is computed once.
    """
    along = functools.cache(along)
    return {index: [along(ax, i) for ax, i in enumerate(index)]
            for index in np.ndindex(*[len(c) for c in out_chunks])}


def _owners(plans: dict) -> dict:
    """Per input chunk, the output block that takes the largest part of it."""
    best: dict = {}
    for block, per_axis in plans.items():
        taken: dict = {}
        for combo in itertools.product(*per_axis):
            if all(chunk is not None for chunk, _, _ in combo):
                chunk = tuple(c for c, _, _ in combo)
                taken[chunk] = taken.get(chunk, 0) + math.prod(n for _, _, n in combo)
        for chunk, size in taken.items():
            if size > best.get(chunk, (-1, None))[0]:
                best[chunk] = (size, block)
    return {chunk: block for chunk, (_, block) in best.items()}


def _source_read(graph, key):
    """The task that reads chunk ``key`` from a store (zarr, TIFF, memmap), or None.

    Only plain reads qualify: running one twice costs a read, never a
    recomputation of the user's upstream graph.
    """
    from dask._task_spec import Task
    from dask.array.core import getter, getter_inline, getter_nofancy

    node = graph.get(key)
    if (isinstance(node, Task) and node.func in (getter, getter_inline, getter_nofancy)
            and all(not isinstance(d, tuple) for d in node.dependencies)):
        return node
    return None


def _reread(x: da.Array, prefix: str = "fftconv-reread-",
            direct_only: bool = False) -> da.Array | None:
    """A second, independent read of ``x``'s chunks when each is a plain store read.

    Halo strips and boundary edges are cut from this copy, so a chunk of ``x``
    feeds only the one output block that owns it and is released as soon as that
    block is done; without it, every chunk waits for the neighbours that read
    its strips, and dask's ordering holds a row of chunks and more.  The price
    is reading those chunks twice, as the setting ``halo_reads="hold"`` does not
    (16384² float32 in 2048² chunks ⊛ 201², one malloc arena: 5.2-5.4 s at
    463-480 MiB held, 6.4-6.7 s at 353-357 MiB read again; default arenas
    5.1-5.3 s at 550-611 MiB against 6.0-6.1 s at 455-464 MiB; at 32768², in 16
    chunks a row, 21.2 s at 1310 MiB against 28.5 s at 555 MiB).  A zarr chunk
    that can be is decoded straight into its array (:mod:`fftconv._io.zarr_direct`);
    with ``direct_only``, None unless every chunk is.
    """
    from dask.highlevelgraph import HighLevelGraph

    graph = x.__dask_graph__()
    name = prefix + x.name
    tasks = {}
    for index in np.ndindex(*x.numblocks):
        tasks[index] = _source_read(graph, (x.name, *index))
        if tasks[index] is None:
            return None
    layer = _direct_layer(graph, x, tasks, name)
    if layer is None and direct_only:
        return None
    if layer is None:
        layer = {(name, *index): task.substitute({}, key=(name, *index))
                 for index, task in tasks.items()}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x])
    return da.Array(graph, name, x.chunks, meta=x._meta)


def _direct_layer(graph, x: da.Array, tasks: dict, name: str) -> dict | None:
    """Tasks reading ``x``'s chunks with :func:`fftconv._io.zarr_direct.read_chunk`, or None.

    Every task of ``tasks`` (dask getters, from :func:`_source_read`) must read
    exactly one whole chunk of one zarr array that :func:`~fftconv._io.zarr_direct.layout`
    accepts, without a lock.  The new tasks refer to the array as the getters
    do (by key when ``from_zarr`` kept it out of line), so it is not copied
    into each.
    """
    from dask._task_spec import DataNode, Task, TaskRef

    from fftconv._io.zarr_direct import chunk_of, layout, read_chunk

    def value(arg):
        if isinstance(arg, TaskRef):
            arg = graph.get(arg.key)
        return arg.value if isinstance(arg, DataNode) else arg

    first = next(iter(tasks.values()))
    array = value(first.args[0]) if first.args else None
    stored = layout(array)
    if stored is None:
        return None
    layer = {}
    for index, task in tasks.items():
        if (len(task.args) != 2 or value(task.args[0]) is not array
                or task.kwargs.get("lock") not in (None, False)):
            return None
        found = chunk_of(value(task.args[1]), stored.chunk_shape, array.shape)
        if found is None:
            return None
        layer[(name, *index)] = Task((name, *index), read_chunk, task.args[0], stored, *found)
    return layer


def _assemble(x, k, request, out_chunks, pads, kernel_key, token, method, nan_policy, frozen,
              block=_block):
    """One task per output block, reading the input chunks its region overlaps.

    The pieces come from :func:`block_pieces`.
    """
    from dask.highlevelgraph import HighLevelGraph

    name = "fftconv-" + dask.base.tokenize(x, token, block.__name__, request.axes,
                                           request.windows, request.boundary, request.cval,
                                           request.dtype.str, method, nan_policy, frozen,
                                           out_chunks)
    plans = _block_plans(x, k, request, out_chunks, pads)
    halo = "fftconv-halo-" + name.removeprefix("fftconv-")
    pieces = block_pieces(x, plans, halo, request.cval, request.dtype)
    layer = dict(pieces.layer)
    for index, nested in pieces.nested.items():
        layer[(name, *index)] = (block, nested, kernel_key.key, token, request.axes, method,
                                 nan_policy, request.dtype, frozen)
    graph = HighLevelGraph.from_collections(name, layer,
                                            dependencies=[*pieces.dependencies, kernel_key])
    meta = np.empty((0,) * x.ndim, dtype=request.dtype)
    return da.Array(graph, name, tuple(out_chunks), meta=meta)


@dataclasses.dataclass
class BlockPieces:
    """What :func:`block_pieces` builds: the nested pieces per block and their tasks."""

    nested: dict  # block index: nested lists of pieces, as np.block joins them
    layer: dict  # the tasks cutting the strips (keys named ``halo``)
    dependencies: list  # the collections those tasks and the pieces read


def block_pieces(x: da.Array, plans: dict, halo: str, cval=0.0, dtype=None) -> BlockPieces:
    """Per block of ``plans`` (from :func:`_block_plans`), the nested pieces of ``x``.

    A chunk enters whole (cut inline, a view) only the block that takes most
    of it; every other block overlapping it gets a copied piece from a small
    task of its own, cut from a second read of the chunk when ``x`` is a plain
    store read (:func:`_reread`), so that the chunk is released as soon as its
    owner is done; with the setting ``halo_reads="hold"``, from the one read,
    which then waits for its neighbours.  When every chunk of ``x`` is one
    whole zarr chunk that :mod:`fftconv._io.zarr_direct` decodes directly, the
    first read is such a read too, not ``x``'s own task.  Pieces of the
    constant boundary are ``cval`` broadcast, in ``dtype`` (default ``x``'s).
    """
    owners = _owners(plans)
    direct = _reread(x, "fftconv-read-", direct_only=True)
    first = x if direct is None else direct
    again = _reread(x) if _config.get("halo_reads") == "reread" else None
    source = first.name if again is None else again.name
    dtype = x.dtype if dtype is None else dtype
    layer: dict = {}

    def piece(index, combo, count):
        if any(chunk is None for chunk, _, _ in combo):
            return (_constant, tuple(n for _, _, n in combo), cval, dtype)
        chunk = tuple(c for c, _, _ in combo)
        cut = tuple(s for _, s, _ in combo)
        if owners[chunk] == index:
            return (_view, (first.name, *chunk), cut)
        key = (halo, *index, next(count))
        layer[key] = (_cut, (source, *chunk), cut)
        return key

    def nested(index, per_axis, count, prefix=()):
        if len(prefix) == len(per_axis):
            return piece(index, prefix, count)
        return [nested(index, per_axis, count, (*prefix, p)) for p in per_axis[len(prefix)]]

    return BlockPieces({index: nested(index, per_axis, itertools.count())
                        for index, per_axis in plans.items()},
                       layer, [first] if again is None else [first, again])


def apply_convolver(convolver, image):
    o = convolver.options
    return convolve(image, convolver.kernel, o["mode"], o["boundary"], o["cval"], o["axes"],
                    o["method"], convolver.settings.backend, convolver.settings.workers,
                    o["nan_policy"], o["dtype"], flip=convolver.correlate)

