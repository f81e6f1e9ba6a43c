"""convolve_vjp / correlate_vjp of dask arrays (SPEC §2): lazy, tiled, never whole in memory.

The same two transposes as :mod:`fftconv._ops.adjoint`, built from dask pieces:

* w.r.t. the image: the full convolution of the zero-padded cotangent with the
  flipped kernel, made of windows of the cotangent's own full convolution
  (the halo tiling of :mod:`fftconv._tiling`, straight from the cotangent's
  chunks); folding the boundary extension back touches only the pixels an
  extended value copied (within the kernel's reach of an edge, the opposite
  edge for ``wrap``), so it is a small matrix product on those rows;
* w.r.t. the kernel: a sum over the cotangent's blocks.  Each block's share is
  a ``valid`` convolution of the extended image's matching region (the block
  plus the kernel's reach) with the flipped block: kernel-sized partial sums,
  added by dask's tree reduction.

This module is imported only when a dask array arrives.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from fftconv._core import settings as _config
from fftconv._core.boundary import source_index
from fftconv._core.lazy import as_dask_array, is_dask_array
from fftconv._core.nonfinite import has_nonfinite
from fftconv._methods.transform import Transform, window_slices
from fftconv._ops.api import convolve
from fftconv._ops.transposes import Transposes, to_kernel_layout, unbroadcast
from fftconv._registry.discovery import load_backend
from fftconv._tiling import (
    Repeat,
    axis_pieces,
    block_pieces,
    check_known_chunks,
    chunk_spans,
    converts_in_blocks,
    forward_by_rows,
    frozen_settings,
    join_starts,
    leaves,
    plans_of,
    reread,
    transforms_by_rows,
    whole_short_axes,
)
from fftconv._tiling import (
    convolve as tiled_convolve,
)


def vjp(image, kernel, cotangent, mode, boundary, axes, *, flip: bool):
    """``(grad_image, grad_kernel)`` as lazy dask arrays; the kernel is brought into memory."""
    kernel = np.asarray(kernel.compute() if is_dask_array(kernel) else kernel)
    image = as_dask_array(image)
    check_known_chunks(image)
    stand_in = np.broadcast_to(np.zeros((), dtype=image.dtype), image.shape)
    t = Transposes(stand_in, kernel, mode, boundary, axes, flip=flip)
    r = t.request
    cot = _cotangent(cotangent, t, image)
    grad_image = _image_transpose(cot, t, image.chunks)
    if not converts_in_blocks(image.dtype, r.replace(cval=0.0)):  # the extension's cval
        image = image.astype(r.dtype)
    grad_k = _kernel_transpose(image, cot, t)
    if flip:  # correlate used conj(flip(kernel)): take the flip back (transpose, no conj)
        grad_k = da.flip(grad_k, axis=t.axes)
    return grad_image, to_kernel_layout(grad_k, kernel, t.axes, axes)


def _cotangent(cotangent, t: Transposes, image) -> da.Array:
    """The cotangent as a dask array of the work dtype, checked against the result's shape."""
    if is_dask_array(cotangent):
        check_known_chunks(cotangent, "cotangent")
    shape = tuple(int(n) for n in np.shape(cotangent))
    if shape != t.out_shape:
        raise ValueError(f"cotangent has shape {shape}; the forward result has "
                         f"shape {t.out_shape}")
    if is_dask_array(cotangent):
        return cotangent.astype(t.request.dtype)
    chunks = tuple(min(n, c) for n, c in zip(t.out_shape, image.chunksize))
    return da.from_array(np.asarray(cotangent, dtype=t.request.dtype), chunks=chunks)


def _image_transpose(cot: da.Array, t: Transposes, image_chunks) -> da.Array:
    """The full convolution of the padded cotangent, folded back onto the image.

    Along each axis the full convolution of ``padded`` (the cotangent after
    ``s`` zeros) is that of the cotangent shifted by ``s``: zeros, then windows
    of the cotangent's own full convolution.  Each piece is convolved straight
    from the cotangent, whose chunks its blocks follow (so a store-read
    cotangent is read as :func:`fftconv._tiling.convolve` reads any image, with
    its memory bound), and the middle window lands on the image's rows.
    """
    r = t.request
    flipped = np.flip(r.kernel, axis=t.axes)
    crop = _full_crop(t)
    # The edge pieces read the cotangent's edge chunks on their own: sharing the middle
    # piece's reads would keep each of those chunks until both had run.
    edge_source = reread(cot, "fftconv-edge-read-")
    edge_source = cot if edge_source is None else edge_source
    per_axis, middle = [], []
    for ax in range(cot.ndim):
        if ax not in t.axes:
            per_axis.append([None])
            middle.append(None)
            continue
        k, n, s = r.kernel.shape[ax], r.image.shape[ax], crop[ax].start
        start, length = k - 1 - s, cot.shape[ax] + k - 1  # the middle window; full length
        middle.append((start, start + n))
        per_axis.append([w for w in (("zeros", s), (0, start), (start, start + n),
                                     (start + n, length), ("zeros", k - 1 - (length - start - n)))
                         if _width(w) > 0])

    def piece(segments):
        shape = [_width(w) if w is not None else cot.shape[ax]
                 for ax, w in enumerate(segments)]
        if any(w is not None and w[0] == "zeros" for w in segments):
            return da.zeros(shape, dtype=r.dtype, chunks=shape)
        windows = [segments[ax] for ax in t.axes]
        source = cot if list(segments) == middle else edge_source
        return _full_windows(source, flipped, t.axes, windows)

    def nested(axis=0, prefix=()):
        if axis == cot.ndim:
            return piece(prefix)
        return [nested(axis + 1, (*prefix, w)) for w in per_axis[axis]]

    folded = da.block(nested())
    for ax, pad in zip(t.axes, t.pads):
        folded = _fold_axis(folded, ax, pad, r.boundary)
    grad = unbroadcast(folded, r.image.shape)
    if grad.shape == r.image.shape and grad.chunks != image_chunks:
        grad = grad.rechunk(image_chunks)  # valid and full: the last chunks differ
    return grad


def _width(window) -> int:
    return window[1] if window[0] == "zeros" else window[1] - window[0]


def _full_windows(cot: da.Array, kernel: np.ndarray, axes, windows) -> da.Array:
    """The ``[start, stop)`` windows (per axis in ``axes``) of ``cot``'s full convolution."""
    return tiled_convolve(cot, kernel, "full", "constant", 0.0, axes, "auto", None, None,
                          "propagate", None, flip=False, windows=windows)


def _full_crop(t: Transposes) -> tuple[slice, ...]:
    """The crop as explicit ``[start, stop)`` slices of the full result."""
    return tuple(slice(*s.indices(n)[:2]) for s, n in zip(t.crop, t.full_shape))


def _fold_axis(g: da.Array, ax: int, pad: tuple[int, int], boundary: str) -> da.Array:
    """:func:`fftconv._core.boundary.fold` along one axis, lazily.

    The extended positions add onto the image rows they copied; those rows are
    few, so their sums are one small 0/1 matrix product and only they change.
    """
    left, right = pad
    n = g.shape[ax] - left - right
    src = source_index(n, pad, boundary)
    margins = np.r_[0:left, left + n:left + n + right]
    margins = margins[src[margins] >= 0]
    center = _along(g, ax, left, left + n)
    if margins.size == 0:
        return center
    targets = np.unique(src[margins])
    weights = (src[margins][:, None] == targets[None, :]).astype(g.dtype)  # margins × targets
    edges = da.take(g, margins, axis=ax)
    sums = da.moveaxis(da.tensordot(edges, weights, axes=([ax], [0])), -1, ax)
    pieces, start, row = [], 0, 0
    for first, last in _runs(targets):
        pieces.append(_along(center, ax, start, first))
        pieces.append(_along(center, ax, first, last) + _along(sums, ax, row, row + last - first))
        row += last - first
        start = last
    pieces.append(_along(center, ax, start, n))
    # The edge rows' pieces merge back into the center's chunks (the others pass through).
    return da.concatenate([p for p in pieces if p.shape[ax]], axis=ax).rechunk(
        {ax: center.chunks[ax]})


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """Sorted distinct ints as ``[first, last)`` runs of consecutive values."""
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(values, breaks)]


def _along(x: da.Array, ax: int, start: int, stop: int) -> da.Array:
    index = [slice(None)] * x.ndim
    index[ax] = slice(start, stop)
    return x[tuple(index)]


class KernelBlocks:
    """Per block of an output chunking, the extended image's region a kernel-sized sum reads.

    The region is the block's window of the full result plus the kernel's
    reach; its pieces come from :func:`fftconv._tiling.block_pieces`, as
    convolve's blocks get theirs: a chunk whole only to the block that takes
    most of it, small strips to the others, cut from a second read when the
    image is a plain store read (so no chunk waits in memory for its
    neighbours).  A block's part sits at :meth:`key`, with a length-1 block
    axis of its own before each kernel axis (``summed``), which a dask sum
    reduces as a tree; on the other axes (channels, batches) the blocks are
    placed, not summed.
    """

    def __init__(self, image: da.Array, out_chunks, t: Transposes) -> None:
        r = t.request
        image = whole_short_axes(image, r.kernel.shape, t.axes)
        offsets = [s.start for s in _full_crop(t)]
        self.reach = {ax: r.kernel.shape[ax] - 1 for ax in t.axes}
        self.token = dask.base.tokenize(image, t.axes, r.boundary, offsets, self.reach,
                                        out_chunks)
        sources = {ax: source_index(image.shape[ax], pad, r.boundary)
                   for ax, pad in zip(t.axes, t.pads)}
        starts = [np.cumsum((0, *c)) for c in out_chunks]

        def along(ax: int, i: int) -> list:
            lo, hi = int(starts[ax][i]), int(starts[ax][i + 1])
            if ax in self.reach:
                lo, hi = lo + offsets[ax], hi + offsets[ax] + self.reach[ax]
                return axis_pieces(sources[ax][lo:hi], image.chunks[ax])
            if image.shape[ax] != t.full_shape[ax]:  # an image broadcast along a batch axis
                return [(0, Repeat(0, hi - lo), hi - lo)]
            return chunk_spans(image.chunks[ax], lo, hi)

        pieces = block_pieces(image, plans_of(out_chunks, along),
                              "fftconv-kernel-halo-" + self.token)
        self.layer, self.pieces, self.dependencies = pieces.layer, pieces.nested, \
            pieces.dependencies
        chunks, summed = [], []
        for ax, c in enumerate(out_chunks):
            if ax in self.reach:
                summed.append(len(chunks))
                chunks += [(1,) * len(c), (self.reach[ax] + 1,)]
            else:
                chunks.append(c)
        self.chunks, self.summed = tuple(chunks), tuple(summed)

    def key(self, name: str, index: tuple[int, ...]) -> tuple:
        """Where block ``index``'s part sits in an array called ``name`` of :attr:`chunks`."""
        key = []
        for ax, i in enumerate(index):
            key += [i, 0] if ax in self.reach else [i]
        return (name, *key)


def _kernel_transpose(image: da.Array, cot: da.Array, t: Transposes) -> da.Array:
    """Gradient w.r.t. the aligned kernel: per cotangent block, a kernel-sized partial sum."""
    from dask.highlevelgraph import HighLevelGraph

    r = t.request
    blocks = KernelBlocks(image, cot.chunks, t)
    frozen = frozen_settings()  # fixed when the graph is built (SPEC §2), as for convolve
    name = "fftconv-kernel-grad-" + dask.base.tokenize(blocks.token, cot, frozen)
    layer = dict(blocks.layer)
    for index, nested in blocks.pieces.items():
        layer[blocks.key(name, index)] = (_kernel_part, nested, (cot.name, *index), t.axes,
                                          blocks.summed, frozen)
    graph = HighLevelGraph.from_collections(name, layer,
                                            dependencies=[*blocks.dependencies, cot])
    parts = da.Array(graph, name, blocks.chunks,
                     meta=np.empty((0,) * len(blocks.chunks), r.dtype))
    grad = parts.sum(axis=blocks.summed)
    return da.flip(unbroadcast(grad, r.kernel.shape), axis=t.axes)


def _kernel_part(pieces, cot: np.ndarray, axes: tuple[int, ...], summed: tuple[int, ...],
                 settings: dict) -> np.ndarray:
    """One block's share of the kernel gradient; a length-1 block axis before each kernel axis.

    The share is the correlation of the block's region with the cotangent block
    at the kernel's lags, which never wrap at a fast shape covering the region:
    two transforms and the lags of a third.  As a planned ``valid`` convolution
    with the block as kernel it took three whole ones, and hashed and cached
    the block's spectrum as a kernel's (the 16384² benchmark's kernel gradient:
    9.6 s at 692 MiB then, 6.0 s at 478-498 MiB now).  Non-finite data takes
    that planned route, which keeps NaN local.
    """
    with _config.set(**settings):
        if any(has_nonfinite(leaf) for _, leaf in leaves(pieces)) or has_nonfinite(cot):
            region = np.block(pieces).astype(cot.dtype, copy=False)
            part = convolve(region, np.flip(cot, axis=axes), "valid", axes=axes)
        else:
            transform, spectrum, shape = region_spectrum(pieces, axes, cot.dtype)
            count = [n - m + 1 for n, m in zip(shape, cot.shape)]
            part = correlation_lags(transform, spectrum, cot, count)
    return np.expand_dims(part, summed)


def region_spectrum(pieces, axes: tuple[int, ...], dtype
                    ) -> tuple[Transform, np.ndarray, tuple[int, ...]]:
    """The transform at fast lengths covering the joined pieces, their spectrum, their shape.

    When the backend runs complex passes in place, the pieces are joined and
    transformed a strip of rows at a time into this thread's spectrum buffer
    (:func:`fftconv._tiling.forward_by_rows`), never joined whole; the spectrum
    is then that buffer, for the caller to use up before the thread's next task.
    """
    starts = join_starts(pieces)
    shape = tuple(int(s[-1]) for s in starts)
    settings = _config.resolve()
    backend = load_backend(settings.backend)
    dtype = np.dtype(dtype)
    real = dtype.kind != "c"
    transform = Transform(backend, [backend.next_fast_len(shape[ax], real) for ax in axes],
                          axes, real, dtype, settings.threads())
    if real and transforms_by_rows(transform):
        padded = list(shape)
        for ax, n in zip(axes, transform.shape):
            padded[ax] = n
        spectrum, _ = forward_by_rows(transform, pieces, starts, tuple(padded), dtype)
        return transform, spectrum, shape
    return transform, transform.forward(np.block(pieces).astype(dtype, copy=False)), shape


def correlation_lags(transform: Transform, spectrum: np.ndarray, r: np.ndarray,
                     count) -> np.ndarray:
    """``Σ_u r[u] x[u + j]`` for the first ``count[ax]`` lags ``j`` on each transformed axis.

    ``spectrum`` is ``transform.forward(x)`` (consumed); ``x`` covers ``r``
    plus the lags, so the circular correlation never wraps on them.  A
    transpose, not an adjoint: complex ``r`` is not conjugated.  The inverse
    runs one axis at a time, each pass only on the rows the earlier ones kept:
    31² lags of a 1056² spectrum take 7.7 ms against 20.7 for the whole inverse.
    """
    flipped = transform.forward(r if transform.real else np.conj(r))
    spectrum = transform.multiply(spectrum, np.conj(flipped, out=flipped))
    del flipped  # a region's worth of memory, before the inverse passes
    backend, workers, axes = transform.backend, transform.workers, transform.axes
    in_place = backend.ifftn_into if backend.capabilities.complex_into else None
    for ax, n in zip(axes, transform.shape):
        if transform.real and ax == axes[-1]:
            spectrum = backend.irfftn(spectrum, (n,), (ax,), workers)
        elif in_place is not None:
            in_place(spectrum, spectrum, (ax,), workers)
        else:
            spectrum = backend.ifftn(spectrum, (n,), (ax,), workers)
        spectrum = spectrum[window_slices(spectrum.ndim, (ax,), (0,), (count[ax],))]
    return spectrum.astype(transform.dtype, copy=False)
