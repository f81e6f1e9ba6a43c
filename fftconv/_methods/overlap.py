"""Blocked FFT convolution, streamed: output tiles computed a few at a time.

Implemented as overlap-save over output tiles: each tile of ``plan.block_shape``
outputs reads the input segment it needs (block + kernel - 1, zero outside the
data), is transformed at ``plan.fft_shape`` with the kernel spectrum computed
once, and is written exactly once into the result.  Compared with
overlap-add, no tile reads back what another wrote, so tiles run in parallel
without locks and the result needs no zero fill; the arithmetic is the same.
Working memory is the kernel spectrum plus one tile's buffers per thread.
"""

from __future__ import annotations

import itertools

import numpy as np

from fftconv._methods._transform import Transform, window_slices
from fftconv._problem import LinearProblem
from fftconv._threads import run_all


def tile_starts(windows, block_shape):
    """Start of every output tile, per axis, in full-result coordinates."""
    return [range(a, b, step) for (a, b), step in zip(windows, block_shape)]


def run(problem: LinearProblem, plan) -> np.ndarray:
    """Compute ``problem`` tile by tile; tiles run on ``plan.threads`` threads."""
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
