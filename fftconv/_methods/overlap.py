"""Blocked FFT convolution, streamed: output tiles computed a few at a time.

Implemented as overlap-save over output tiles: each tile of ``plan.block_shape``
outputs reads the input segment it needs (block + kernel - 1, zero outside the
data), is transformed at ``plan.fft_shape`` with the kernel spectrum computed
once, and is written exactly once into the result.  Compared with
overlap-add, no tile reads back what another wrote, so tiles run in parallel
without locks and the result needs no zero fill; the arithmetic is the same.
Working memory is the kernel spectrum plus one tile's buffers per thread.

A 1-D signal's tiles are short, and one transform call each cost more in calls
than in arithmetic: they run as batches, the rows of one ``(tiles, length)``
array transformed in one call (:func:`_run_lines`), as scipy's oaconvolve does.
"""

from __future__ import annotations

import itertools

import numpy as np

from fftconv._core.problem import LinearProblem
from fftconv._infra.threads import run_all
from fftconv._methods.transform import Transform, window_slices


def tile_starts(windows, block_shape):
    """Start of every output tile, per axis, in full-result coordinates."""
    return [range(a, b, step) for (a, b), step in zip(windows, block_shape)]


# A batch of a 1-D signal's tiles holds about this many elements (a few MiB a buffer).
LINE_BATCH_ELEMENTS = 1 << 20


def line_batch(length: int, threads: int, tile_bytes: int,
               memory_limit: int | None = None) -> int:
    """Tiles of ``length`` (``tile_bytes`` of buffers each) transformed in one call, for
    a 1-D signal (:func:`_run_lines`): at least one a thread, else about
    :data:`LINE_BATCH_ELEMENTS`, within ``memory_limit``."""
    batch = LINE_BATCH_ELEMENTS // length
    if memory_limit is not None:
        batch = min(batch, memory_limit // max(1, tile_bytes))
    return max(threads, batch)


def tile_bytes(length: int, real: bool, dtype: np.dtype) -> int:
    """A 1-D tile's buffers: the zero-padded segment, its spectrum, the circular result."""
    item = np.dtype(dtype).itemsize
    spectrum = (length // 2 + 1) * 2 * item if real else length * item
    return spectrum + 2 * length * item


def run(problem: LinearProblem, plan) -> np.ndarray:
    """Compute ``problem`` tile by tile; tiles run on ``plan.threads`` threads."""
    if problem.y.ndim == 1 and _tile_count(problem, plan) > 1:
        return _run_lines(problem, plan)
    parallel = plan.threads > 1 and _tile_count(problem, plan) > 1
    transform = Transform(plan.backend, plan.fft_shape, problem.axes, problem.is_real,
                          problem.dtype, 1 if parallel else plan.threads)
    kernel_spectrum = plan.kernel_spectrum(transform, problem.kernel)
    out = np.empty(problem.out_shape, dtype=problem.dtype)

    def work(starts: tuple[int, ...]) -> None:
        _tile(problem, plan.block_shape, transform, kernel_spectrum, out, starts)

    tiles = itertools.product(*tile_starts(problem.windows, plan.block_shape))
    run_all(work, tiles, plan.threads if parallel else 1)
    return out


def _tile_count(problem: LinearProblem, plan) -> int:
    count = 1
    for rng in tile_starts(problem.windows, plan.block_shape):
        count *= len(rng)
    return count


def _tile(problem, block_shape, transform, kernel_spectrum, out, starts) -> None:
    """Outputs ``[o0, o0 + block)`` (clipped) from data ``[o0 - K + 1, o1)`` (clipped)."""
    y = problem.y
    seg_lo, seg_hi, crop_lo, crop_hi, out_lo, out_hi = [], [], [], [], [], []
    for ax, (a, b), o0, block, k in zip(problem.axes, problem.windows, starts, block_shape,
                                        problem.kernel_lengths):
        o1 = min(o0 + block, b)
        d0, d1 = max(0, o0 - k + 1), min(y.shape[ax], o1)
        seg_lo.append(d0)
        seg_hi.append(max(d0, d1))
        crop_lo.append(o0 - d0)
        crop_hi.append(o1 - d0)
        out_lo.append(o0 - a)
        out_hi.append(o1 - a)
    segment = y[window_slices(y.ndim, problem.axes, seg_lo, seg_hi)]
    target = out[window_slices(out.ndim, problem.axes, out_lo, out_hi)]
    if segment.size == 0:
        target[...] = 0
        return
    circular = transform.convolve(segment, kernel_spectrum)
    target[...] = circular[window_slices(circular.ndim, problem.axes, crop_lo, crop_hi)]


def _run_lines(problem: LinearProblem, plan) -> np.ndarray:
    """A 1-D signal's tiles in batches: each batch's segments are the rows of one array,
    transformed, multiplied and transformed back in one call each (threads over rows)."""
    y, (k,), (a, b) = problem.y, problem.kernel_lengths, problem.windows[0]
    (block,), (length,) = plan.block_shape, plan.fft_shape
    single = Transform(plan.backend, (length,), (0,), problem.is_real, problem.dtype,
                       plan.threads)
    rows = Transform(plan.backend, (length,), (1,), problem.is_real, problem.dtype,
                     plan.threads)
    kernel_spectrum = plan.kernel_spectrum(single, problem.kernel)
    out = np.empty(problem.out_shape, dtype=problem.dtype)
    starts = range(a, b, block)
    batch = line_batch(length, plan.threads, tile_bytes(length, problem.is_real, problem.dtype),
                       plan.memory_limit)
    for first in range(0, len(starts), batch):
        group = starts[first:first + batch]
        segments = np.zeros((len(group), length), dtype=problem.dtype)
        for row, o0 in zip(segments, group):
            # Row index 0 is data index o0 - k + 1: outputs o0.. are at k - 1.. of the row.
            d0, d1 = max(0, o0 - k + 1), min(y.shape[0], o0 + block, b)
            if d1 > d0:
                row[d0 - o0 + k - 1:d1 - o0 + k - 1] = y[d0:d1]
        circular = rows.convolve(segments, kernel_spectrum)
        for row, o0 in zip(circular, group):
            o1 = min(o0 + block, b)
            out[o0 - a:o1 - a] = row[k - 1:k - 1 + o1 - o0]
    return out
