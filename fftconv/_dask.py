"""Dask arrays in, lazy Dask arrays out (SPEC §2): halo tiling with any chunking.

The image is extended once, lazily, by the boundary rule (the same index maps
as ``np.pad``, so every rule and extensions wider than the image match the
in-memory result).  Every output block then reads exactly the region of the
extension it needs — its own extent plus the kernel's reach, asymmetric for
even kernels, across as many input chunks as that takes (chunks smaller than
the halo included) — and computes a ``valid`` convolution of it in memory.

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
import itertools
import math
import operator

import dask
import dask.array as da
import numpy as np

from fftconv import _config, _workspace
from fftconv._boundary import source_index
from fftconv._nonfinite import has_nonfinite
from fftconv._request import build_request
from fftconv._shapes import extension
from fftconv._spectra import SpectrumCache, spectrum_for

_caches = _workspace.Idle(limit=16)


def _worker_cache(token: str) -> SpectrumCache:
    """One spectrum cache per kernel per worker process (tasks of one graph share it).

    Dropped once idle (:mod:`fftconv._workspace`): it serves one computation,
    the worker process outlives it.
    """
    return _caches.get(token, lambda: SpectrumCache(entries=4, max_bytes=None))


def _extend_axis(x: da.Array, axis: int, pad: tuple[int, int], boundary: str, cval,
                 source: da.Array | None = None) -> da.Array:
    """``x`` extended along one axis; the edges are taken from ``source`` (default ``x``)."""
    left, right = pad
    if not left and not right:
        return x
    source = x if source is None else source
    n = x.shape[axis]
    parts = []
    if boundary == "constant":
        def edge(width, start=None):
            shape = list(x.shape)
            shape[axis] = width
            return da.full(shape, cval, dtype=x.dtype, chunks=tuple(
                c if ax != axis else (width,) for ax, c in enumerate(x.chunks)))
    else:
        index = source_index(n, pad, boundary)

        def edge(width, start=None):
            return da.take(source, index[start:start + width], axis=axis)
    if left:
        parts.append(edge(left, 0))
    parts.append(x)
    if right:
        parts.append(edge(right, left + n))
    return da.concatenate(parts, axis=axis)


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
    are this thread's reused buffers (:mod:`fftconv._workspace`); when it also
    runs its complex passes in place, the tile is never joined whole: it is
    joined and transformed a strip of rows at a time (:func:`_convolve_by_rows`).
    """
    from fftconv._api import run_request, static_plan

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
        if transform is None or by_rows:
            piece = _join_into(parts, starts, np.empty(padded, dtype=request.dtype))
        else:
            piece, spectrum = _workspace.buffers(tuple(padded),
                                                 _spectrum_shape(padded, request.axes),
                                                 request.dtype)
            _join_into(parts, starts, piece)
            if not has_nonfinite(piece):
                return _convolve_in_place(transform, piece, spectrum, request, cache)
        return run_request(request.replace(image=piece), resolved, cache)


def window_block(parts, kernel: np.ndarray, token: str, axes, method: str, nan_policy: str,
                 dtype, settings: dict) -> np.ndarray:
    """One output block of :func:`fftconv.window_sum`: its pieces joined, every full window summed.

    The windows are the kernel's shape; the sums run in float64 as in memory.
    """
    from fftconv._window import window_sum

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

    Only what :func:`fftconv._api.compute` runs as one plain real FFT (``plan``,
    from :func:`fftconv._api.static_plan`) qualifies, on a backend with
    ``rfftn_into`` / ``irfftn_into``: never a non-finite kernel or a kernel
    broadcast over an image axis.  Non-finite data is checked per block.
    """
    from fftconv._methods._transform import Transform

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
    from fftconv._methods._transform import window_slices

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
    from fftconv._methods._transform import window_slices

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
    from fftconv._methods._transform import window_slices

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
    with np.errstate(all="ignore"):
        return bool(cval.astype(dtype).astype(request.dtype) == cval)


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
    frozen = frozen_settings(backend, workers)
    k = request.kernel
    x = image if converts_in_blocks(image.dtype, request) else image.astype(request.dtype)
    for ax in range(x.ndim):  # broadcast kernel axes: those image axes stay whole
        if ax not in request.axes and k.shape[ax] > 1 and len(x.chunks[ax]) > 1:
            x = x.rechunk({ax: -1})
    if tile == "auto":
        from fftconv._registry import load_backend

        backend_obj = load_backend(frozen["backend"])
        x = x.rechunk({ax: fast_tiles(x.chunks[ax], k.shape[ax],
                                      lambda n: backend_obj.next_fast_len(n, True))
                       for ax in request.axes})
    elif tile is not None:
        raise ValueError(f"tile={tile!r} is not one of None, 'auto'")
    out_chunks = list(x.chunks)
    pads = {ax: extension(x.shape[ax], k.shape[ax], window)
            for ax, window in zip(request.axes, request.windows)}
    x, rereads = extend(x, pads, boundary, request.cval)
    for ax, (a, b) in zip(request.axes, request.windows):
        out_chunks[ax] = _out_chunks(image.chunks[ax] if tile is None else out_chunks[ax],
                                     b - a)
    for ax in range(x.ndim):
        if ax not in request.axes:
            out_chunks[ax] = (max(x.shape[ax], k.shape[ax]),) if k.shape[ax] > 1 and \
                x.shape[ax] == 1 else x.chunks[ax]
    kernel_key = dask.delayed(k, pure=True)
    token = dask.base.tokenize(k, request.dtype.str)
    return _assemble(x, k, request, out_chunks, kernel_key, token, method, nan_policy, frozen,
                     rereads, block or _block)


def extend(x: da.Array, pads: dict, boundary: str, cval):
    """``x`` extended lazily by ``pads`` (axis: (left, right)) with the boundary rule.

    Also returns ``(x.name, second_read)`` when every chunk of ``x`` is a plain
    store read (:func:`_reread`), else None: the edges come from the second
    read, and so do the halo strips :func:`block_pieces` cuts, so that they
    never hold the body's chunks.
    """
    again = first_read = _reread(x)
    origin = x.name
    for ax, pad in pads.items():
        if again is None:
            x = _extend_axis(x, ax, pad, boundary, cval)
        else:
            x, again = (_extend_axis(x, ax, pad, boundary, cval, again),
                        _extend_axis(again, ax, pad, boundary, cval))
    return x, None if first_read is None else (origin, first_read)


def _spans(chunks: tuple[int, ...], start: int, stop: int) -> list[tuple[int, slice]]:
    """The chunks overlapping ``[start, stop)``, each with the part of it inside."""
    bounds = np.cumsum((0, *chunks))
    first = int(np.searchsorted(bounds, start, side="right")) - 1
    last = int(np.searchsorted(bounds, stop, side="left")) - 1
    return [(i, slice(max(start, int(bounds[i])) - int(bounds[i]),
                      min(stop, int(bounds[i + 1])) - int(bounds[i])))
            for i in range(first, last + 1)]


def _cut(chunk: np.ndarray, cut: tuple[slice, ...]) -> np.ndarray:
    """A copy of a halo strip, so the chunk it came from can be released."""
    return np.array(chunk[cut])


def _block_plans(x, k, request, out_chunks) -> dict:
    """Per output block, per axis, the input chunks its region overlaps and their cuts."""
    starts = [np.cumsum((0, *c[:-1])) for c in out_chunks]
    # The extension starts at the window's first read, a - (k - 1), unless the window
    # starts past the kernel's reach (custom windows): then that many samples in.
    skip = {ax: max(0, a - (k.shape[ax] - 1)) for ax, (a, _) in zip(request.axes,
                                                                     request.windows)}
    plans = {}
    for index in np.ndindex(*[len(c) for c in out_chunks]):
        per_axis = []
        for ax in range(x.ndim):
            j0 = int(starts[ax][index[ax]])
            j1 = j0 + out_chunks[ax][index[ax]]
            if ax in request.axes:
                lo, hi = j0 + skip[ax], j1 + skip[ax] + k.shape[ax] - 1
            elif x.shape[ax] == 1:
                lo, hi = 0, 1
            else:
                lo, hi = j0, j1
            per_axis.append(_spans(x.chunks[ax], lo, hi))
        plans[index] = per_axis
    return plans


def _owners(plans: dict) -> dict:
    """Per input chunk, the output block that takes the largest part of it."""
    best: dict = {}
    for block, per_axis in plans.items():
        for combo in itertools.product(*per_axis):
            chunk = tuple(i for i, _ in combo)
            size = math.prod(cut.stop - cut.start for _, cut in combo)
            if size > best.get(chunk, (-1, None))[0]:
                best[chunk] = (size, block)
    return {chunk: block for chunk, (_, block) in best.items()}


def _is_key(value: tuple, graph) -> bool:
    try:
        return value in graph
    except TypeError:  # a legacy task tuple holding unhashable arguments
        return False


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


def _reread(x: da.Array, prefix: str = "fftconv-reread-") -> da.Array | None:
    """A second, independent read of ``x``'s chunks when each is a plain store read.

    Boundary edges and halo strips are cut from this copy, so a chunk of ``x``
    feeds only the one output block that owns it and is released as soon as that
    block is done; without it, a 2-D halo graph makes dask's ordering hold whole
    rows of chunks (400 MiB at 16384² in 2048² chunks, against under 100 MiB).
    The price is reading the edge and halo chunks twice.
    """
    from dask.highlevelgraph import HighLevelGraph

    graph = x.__dask_graph__()
    name = prefix + x.name
    layer = {}
    for index in np.ndindex(*x.numblocks):
        task = _source_read(graph, (x.name, *index))
        if task is None:
            return None
        layer[(name, *index)] = task.substitute({}, key=(name, *index))
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x])
    return da.Array(graph, name, x.chunks, meta=x._meta)


def _resolve(graph, key):
    """Follow aliases (a concatenation keeps its parts' chunks under new names)."""
    from dask._task_spec import Alias

    for _ in range(64):
        node = graph.get(key)
        if isinstance(node, Alias):
            key = node.target
        elif isinstance(node, tuple) and _is_key(node, graph):
            key = node
        else:
            return key
    return key


def _assemble(x, k, request, out_chunks, kernel_key, token, method, nan_policy, frozen,
              rereads=None, block=_block):
    """One task per output block, reading the input chunks its region overlaps.

    The pieces come from :func:`block_pieces`; ``rereads`` as :func:`extend` returns it.
    """
    from dask.highlevelgraph import HighLevelGraph

    name = "fftconv-" + dask.base.tokenize(x, token, block.__name__, request.axes,
                                           request.windows, request.dtype.str, method,
                                           nan_policy, frozen, out_chunks)
    plans = _block_plans(x, k, request, out_chunks)
    halo = "fftconv-halo-" + name.removeprefix("fftconv-")
    layer, pieces = block_pieces(x, plans, rereads, halo)
    for index, nested in pieces.items():
        layer[(name, *index)] = (block, nested, kernel_key.key, token, request.axes, method,
                                 nan_policy, request.dtype, frozen)
    extra = [] if rereads is None else [rereads[1]]
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x, kernel_key, *extra])
    meta = np.empty((0,) * x.ndim, dtype=request.dtype)
    return da.Array(graph, name, tuple(out_chunks), meta=meta)


def block_pieces(x: da.Array, plans: dict, rereads, halo: str) -> tuple[dict, dict]:
    """Per block of ``plans``, the nested pieces of ``x`` that :func:`np.block` joins.

    A chunk enters whole (cut inline) only the block that takes most of it;
    every other block overlapping it gets a copied strip from a small task of
    its own, cut from ``rereads`` — ``(name, array)``: a second read of the
    chunks of the array called ``name`` — when there is one.  Returns the layer
    of those strip tasks (keys named ``halo``) and the pieces per block.
    """
    owners = _owners(plans)
    graph = x.__dask_graph__()
    layer: dict = {}

    def strip_source(chunk):
        """Where a halo strip is cut from: the second read of the chunk, if there is one."""
        key = _resolve(graph, (x.name, *chunk))
        if rereads is not None and isinstance(key, tuple) and key[0] == rereads[0]:
            return (rereads[1].name, *key[1:])
        return (x.name, *chunk)

    def piece(index, combo):
        chunk = tuple(i for i, _ in combo)
        cut = tuple(c for _, c in combo)
        if owners[chunk] == index:
            return (operator.getitem, (x.name, *chunk), cut)
        key = (halo, *index, *chunk)
        layer[key] = (_cut, strip_source(chunk), cut)
        return key

    def nested(index, per_axis, axis=0, prefix=()):
        if axis == len(per_axis):
            return piece(index, prefix)
        return [nested(index, per_axis, axis + 1, (*prefix, span)) for span in per_axis[axis]]

    return layer, {index: nested(index, per_axis) for index, per_axis in plans.items()}


def apply_convolver(convolver, image):
    o = convolver.options
    return convolve(image, convolver.kernel, o["mode"], o["boundary"], o["cval"], o["axes"],
                    o["method"], convolver.settings.backend, convolver.settings.workers,
                    o["nan_policy"], o["dtype"], flip=convolver.correlate)

