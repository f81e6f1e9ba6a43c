"""The planner: estimated time and memory of every method, and the choice.

Costs are first-principles counts times per-operation rates:

* direct: non-zero taps × outputs × the engine's rate (OpenCV or NumPy);
* fft: three transforms (image, kernel, inverse) of the fast padded shape,
  ``n log2 n`` each, halved for real data;
* overlap-add: the kernel transform plus two transforms per output tile, at
  the block that minimises cost per output (Lambert W optimum, rounded to a
  fast length), shrunk until the working memory fits ``memory_limit``, plus a
  fixed cost per tile (a twentieth of it for a 1-D signal's batched tiles).

The rates (:mod:`fftconv._planning.rates`) are this machine's when ``fftconv
calibrate`` has measured them, else defaults measured on a 2-core x86-64
machine.  The chosen method is the fastest candidate whose working memory fits
the limit (else the one needing least memory).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fftconv._core.problem import LinearProblem
from fftconv._core.shapes import circular_length
from fftconv._infra.cache import Cache
from fftconv._methods import direct as direct_method
from fftconv._methods.overlap import line_batch, tile_bytes
from fftconv._methods.spectra import spectrum_for
from fftconv._planning.rates import Rates, rates_for
from fftconv._registry import load_backend, registered_name

DEFAULT_TILE_BUDGET = 16 * 2**20
# A 1-D signal's tiles run in batches (overlap._run_lines): each costs its two copies,
# a few µs, not a call of its own.
LINE_TILE_SHARE = 0.05
# Estimates are pure functions of a problem's signature: computed once per signature.
_CANDIDATES = Cache("planner estimates", entries=512)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One method's estimate: ``seconds`` and working ``bytes`` beyond inputs and output."""

    method: str
    seconds: float
    bytes: int
    fft_shape: tuple[int, ...] | None = None
    block_shape: tuple[int, ...] | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one call will run.  ``candidates`` holds every method's estimate."""

    method: str
    backend: Any
    threads: int
    fft_shape: tuple[int, ...] | None
    block_shape: tuple[int, ...] | None
    candidates: tuple[Candidate, ...]
    memory_limit: int | None = None
    reason: str = ""
    spectra: Any = None

    @property
    def seconds(self) -> float:
        """The chosen method's estimate."""
        return next(c.seconds for c in self.candidates if c.method == self.method)

    def kernel_spectrum(self, transform, kernel: np.ndarray) -> np.ndarray:
        return spectrum_for(self.spectra, transform, kernel)

    def explain(self) -> str:
        """A few readable lines: each candidate's estimate and why this method won."""
        lines = [f"method: {self.method} ({self.reason}); backend: {self.backend.name}, "
                 f"threads: {self.threads}"]
        for c in self.candidates:
            shape = f", fft shape {c.fft_shape}" if c.fft_shape else ""
            block = f", block {c.block_shape}" if c.block_shape else ""
            lines.append(f"  {c.method:<12} ~{c.seconds * 1e3:10.2f} ms  "
                         f"{c.bytes / 2**20:9.1f} MiB{shape}{block}{c.note}")
        return "\n".join(lines)

    def __reduce__(self):
        # A backend object may hold a module: it travels as the name it was registered
        # under.  The spectrum cache is the sending process's own and stays behind.
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(backend=registered_name(self.backend), spectra=None)
        return _unpickled_plan, (fields,)


def _unpickled_plan(fields: dict) -> Plan:
    return Plan(**{**fields, "backend": load_backend(fields["backend"])})


def nonzero_taps(kernel: np.ndarray, axes: tuple[int, ...]) -> int:
    """The kernel positions over ``axes`` with a non-zero tap (in any broadcast plane).

    A shape's stand-in (one value broadcast, every stride 0) is counted without
    building its mask: ``fftconv plan`` of a 100000² kernel allocated 9 GiB.

    Examples
    --------
    >>> nonzero_taps(np.array([[0.0, 1.0], [0.0, 2.0]]), (1,))
    1
    >>> nonzero_taps(np.broadcast_to(np.float32(1), (10**5, 10**5)), (0, 1))
    10000000000
    """
    if kernel.size and not any(kernel.strides):
        value = kernel[(0,) * kernel.ndim]
        return math.prod(kernel.shape[ax] for ax in axes) if value != 0 else 0
    return int(np.count_nonzero(np.any(kernel != 0, axis=tuple(
        ax for ax in range(kernel.ndim) if ax not in axes))))


def _nlogn(shape: Sequence[int]) -> float:
    n = math.prod(shape)
    return n * math.log2(max(n, 2))


def _speedup(threads: int, rates: Rates) -> float:
    return 1.0 + (threads - 1) * rates.thread_efficiency


def _spectrum_elements(shape: Sequence[int], real: bool) -> int:
    if not real:
        return math.prod(shape)
    return math.prod(shape[:-1]) * (shape[-1] // 2 + 1)


def lambertw_m1(z: float) -> float:
    """The ``k=-1`` branch of Lambert W for ``-1/e <= z < 0`` (Halley's iteration)."""
    w = math.log(-z) - math.log(-math.log(-z)) if z > -0.25 else -2.0
    for _ in range(50):
        ew = math.exp(w)
        f = w * ew - z
        step = f / (ew * (w + 1) - (w + 2) * f / (2 * w + 2))
        w -= step
        if abs(step) <= 1e-12 * abs(w):
            break
    return w


def optimal_block(k: int, window: int, fast_len) -> tuple[int, int]:
    """(outputs per tile, transform length) minimising ``L log L / (L - k + 1)``.

    The optimum transform length is ``-(k-1)·W₋₁(-1/(2e(k-1)))`` (as in
    scipy.signal.oaconvolve), rounded up to a fast length.
    """
    if k == 1:
        length = fast_len(min(window, 4096))
        return min(window, length), length
    overlap = k - 1
    best = -overlap * lambertw_m1(-1.0 / (2 * math.e * overlap))
    length = fast_len(math.ceil(best))
    block = length - overlap
    if block >= window:
        length = fast_len(window + overlap)
        block = window
    return block, length


class Planner:
    """Estimates every method for one :class:`LinearProblem` and picks one."""

    def __init__(self, backend, threads: int, memory_limit: int | None,
                 rates: Rates | None = None, kernel_ready: bool = False) -> None:
        self.backend = backend
        self.threads = threads
        self.memory_limit = memory_limit
        self.fixed_rates = rates
        self.rates = rates or Rates()
        # A Convolver holds the kernel's spectrum: its transform is not paid per call.
        self.kernel_ready = kernel_ready

    def _native(self, dtype: np.dtype) -> bool:
        """Whether the backend transforms ``dtype`` in its own precision (its capabilities)."""
        native = getattr(getattr(self.backend, "capabilities", None), "native_dtypes", None)
        return native is None or np.dtype(dtype) in native

    def fast_len(self, n: int, real: bool) -> int:
        return int(self.backend.next_fast_len(int(n), real))

    def direct(self, p: LinearProblem) -> Candidate:
        taps = nonzero_taps(p.kernel, p.axes)
        outputs = math.prod(p.out_shape)
        itemsize = p.dtype.itemsize
        if direct_method.opencv_applies(p):
            seconds = outputs * (self.rates.opencv_pass + taps * self.rates.opencv_tap)
            engine = "opencv"
        else:
            stripes = direct_method.stripe_count(p.out_shape, p.axes)
            seconds = (taps * outputs * self.rates.direct_numpy / _speedup(self.threads, self.rates)
                       + taps * stripes * self.rates.numpy_tap / min(stripes, self.threads))
            engine = "numpy"
        padded = math.prod(b - a + k - 1 for (a, b), k in zip(p.windows, p.kernel_lengths))
        scratch = self.threads * direct_method.STRIPE_ELEMENTS * itemsize
        return Candidate("direct", seconds, padded * p.batch * itemsize + scratch,
                         note=f", {taps} taps, {engine} engine")

    def fft(self, p: LinearProblem) -> Candidate:
        shape = tuple(
            self.fast_len(circular_length((0, n), k, w), p.is_real)
            for n, k, w in zip(p.data_lengths, p.kernel_lengths, p.windows)
        )
        return self._fft_cost(p, shape, tiles=1, method="fft", block=None)

    def _block_choices(self, p: LinearProblem, axis: int) -> list[int]:
        """Tile lengths to try on one axis: fast lengths from 1 up to the whole window.

        Without overhead the optimum is the Lambert W block; the fixed cost per
        tile pushes it up, and a memory limit pushes it down, so a geometric
        ladder on both sides of it is searched.
        """
        k = p.kernel_lengths[axis]
        a, b = p.windows[axis]
        best, _ = optimal_block(k, b - a, lambda n: self.fast_len(n, p.is_real))
        ladder = {best, b - a}
        step = best
        while step > 1:
            step //= 2
            ladder.add(self.fast_len(step + k - 1, p.is_real) - k + 1)
        step = best
        while step < b - a:
            step *= 2
            ladder.add(self.fast_len(step + k - 1, p.is_real) - k + 1)
        return sorted(n for n in ladder if 1 <= n <= b - a)

    def overlap(self, p: LinearProblem, memory_limit: int | None = None) -> Candidate:
        """The cheapest tiling that fits ``memory_limit`` (else the smallest one)."""
        choices = [self._block_choices(p, axis) for axis in range(len(p.axes))]
        if math.prod(len(c) for c in choices) > 4096:
            best = [optimal_block(k, b - a, lambda n: self.fast_len(n, p.is_real))[0]
                    for k, (a, b) in zip(p.kernel_lengths, p.windows)]
            choices = [sorted({c[0], min(c, key=lambda n: abs(n - m)), c[-1]})
                       for c, m in zip(choices, best)]
        candidates = [self._tiled(p, list(blocks)) for blocks in itertools.product(*choices)]
        fits = [c for c in candidates if memory_limit is None or c.bytes <= memory_limit]
        if fits:
            return min(fits, key=lambda c: c.seconds)
        return min(candidates, key=lambda c: c.bytes)

    def _tiled(self, p: LinearProblem, blocks: list[int]) -> Candidate:
        shape = [self.fast_len(n + k - 1, p.is_real) for n, k in zip(blocks, p.kernel_lengths)]
        tiles = math.prod(math.ceil((b - a) / s) for (a, b), s in zip(p.windows, blocks))
        return self._fft_cost(p, tuple(shape), tiles=tiles, method="overlap-add",
                              block=tuple(blocks))

    def _fft_cost(self, p: LinearProblem, shape: tuple[int, ...], tiles: int, method: str,
                  block: tuple[int, ...] | None) -> Candidate:
        real_factor = 0.5 if p.is_real else 1.0
        per_transform = self.rates.fft * _nlogn(shape) * real_factor
        spectrum = _spectrum_elements(shape, p.is_real)
        batch_y = math.prod(n for ax, n in enumerate(p.y.shape) if ax not in p.axes)
        batch_k = math.prod(n for ax, n in enumerate(p.kernel.shape) if ax not in p.axes)
        work = (per_transform * (batch_y + p.batch) + spectrum * p.batch * self.rates.product)
        kernel = 0.0 if self.kernel_ready else per_transform * batch_k
        seconds = (kernel + tiles * work) / _speedup(self.threads, self.rates) + self.rates.fft_call
        lines = tiles > 1 and p.y.ndim == 1
        tile = self.rates.tile * (LINE_TILE_SHARE if lines else 1.0)
        seconds += tiles * tile / min(tiles, self.threads) if tiles > 1 else 0.0
        complex_item = 2 * p.dtype.itemsize if p.is_real else p.dtype.itemsize
        # per tile in flight: the zero-padded input copy, its spectrum, the circular result
        per_tile = spectrum * p.batch * complex_item + math.prod(shape) * (
            p.batch + batch_y) * p.dtype.itemsize
        if not self._native(p.dtype):
            # A backend that transforms this precision in double (numpy.fft before 2.0)
            # holds a double-precision spectrum beside the one it returns.
            per_tile += spectrum * p.batch * 2 * complex_item
        if lines:  # a batch of tiles at a time; per_tile is overlap.tile_bytes here
            in_flight = min(tiles, line_batch(shape[0], self.threads,
                                              tile_bytes(shape[0], p.is_real, p.dtype),
                                              self.memory_limit))
        else:
            in_flight = min(tiles, self.threads) if tiles > 1 else 1
        total = spectrum * batch_k * complex_item + in_flight * per_tile
        return Candidate(method, seconds, int(total), shape, block,
                         note=f", {tiles} tiles" if tiles > 1 else "")

    def candidates(self, p: LinearProblem) -> tuple[Candidate, ...]:
        # Without a limit, tiles still stay within one image's bytes: near the optimum the
        # tile size barely changes the time, and streaming is what overlap-add is for.
        budget = self.memory_limit or max(p.y.nbytes, DEFAULT_TILE_BUDGET)
        return (self.direct(p), self.fft(p), self.overlap(p, budget))

    def signature(self, p: LinearProblem) -> tuple:
        """Everything the estimates depend on: shapes, dtype, support, backend, threads, limit."""
        taps = nonzero_taps(p.kernel, p.axes)
        return (p.y.shape, p.kernel.shape, p.axes, p.windows, p.dtype.str, taps,
                self.backend.name, id(self.backend), self.threads, self.memory_limit,
                self.rates, self.kernel_ready)

    def plan(self, p: LinearProblem, method: str = "auto") -> Plan:
        if self.fixed_rates is None:
            self.rates = rates_for(self.backend.name, p.dtype, self.threads)
        key = self.signature(p)
        candidates = _CANDIDATES.get_or_make(key, lambda: self.candidates(p))
        by_name = {c.method: c for c in candidates}
        if method != "auto":
            chosen, reason = by_name[method], "forced by method="
        else:
            fits = [c for c in candidates
                    if self.memory_limit is None or c.bytes <= self.memory_limit]
            if fits:
                chosen = min(fits, key=lambda c: c.seconds)
                reason = "fastest estimate" + (" within memory_limit" if self.memory_limit
                                               else "")
            else:
                chosen = min(candidates, key=lambda c: c.bytes)
                reason = "nothing fits memory_limit; least memory"
        return Plan(chosen.method, self.backend, self.threads, chosen.fft_shape,
                    chosen.block_shape, candidates, self.memory_limit, reason)
