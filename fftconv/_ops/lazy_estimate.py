"""estimate_kernel of dask arrays (SPEC §2): lazy, one pass over the blocks per iteration.

In memory, CGLS keeps a residual the size of the output: out of core that would
be a second image to store.  Here the same conjugate gradients run on the
normal equations ``(AᵀWA + λI) k = AᵀWb`` (``W`` the mask) with kernel-sized
vectors only.  What an iteration asks of the data, ``AᵀW(A·p − b)`` and
``‖W(A·p − b)‖²``, is one pass over the output's blocks: each block reads the
extended image's region it depends on (the block plus the kernel's reach),
convolves it with ``p``, and correlates the same region with the masked
result (one transform of the region serves both), a kernel-sized part that
dask sums as a tree.  The image is read once per iteration, and no task holds
more than a block's region and its transforms.

CG on the normal equations updates their residual by recursion, which drifts
from the true one in floating point; when the recursion says converged, one
more pass computes the true residual, and the iteration restarts from it if it
is not small enough yet.

The returned kernel is lazy: its one task runs the iteration when computed,
each pass a computation of its own on the scheduler in effect (from a
dask.distributed worker, after seceding from the worker's thread pool so the
passes can use it).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import dask
import dask.array as da
import numpy as np

from fftconv._core import settings as _config
from fftconv._core.lazy import as_dask_array, is_dask_array
from fftconv._methods.spectra import spectrum_for
from fftconv._methods.transform import window_slices
from fftconv._ops.kernel_fit import KernelFit, check_mask, default_maxiter, reported, transposes
from fftconv._ops.lazy_adjoint import KernelBlocks, correlation_lags, region_spectrum
from fftconv._tiling import (
    check_known_chunks,
    converts_in_blocks,
    frozen_settings,
    merged,
    output_chunks,
    worker_spectra,
)


class _Problem:
    """The data of one fit, as dask arrays.

    A plain class, so that ``dask.delayed`` passes it to the solve as it is
    rather than computing the arrays inside it first (it would, for a
    dataclass or a tuple).
    """

    def __init__(self, image, output, kernel_shape, mode, boundary, mask) -> None:
        image = _real(as_dask_array(image), "image")
        output = _real(output, "output")
        check_known_chunks(image)
        for name, value in (("output", output), ("mask", mask)):
            if is_dask_array(value):
                check_known_chunks(value, name)
        stand_in = np.broadcast_to(np.zeros((), dtype=np.float64), image.shape)
        self.ops = transposes(stand_in, np.shape(output), kernel_shape, mode, boundary, 0.0)
        out_shape = self.ops.out_shape
        if mask is not None:
            check_mask(np.shape(mask), out_shape)
        if is_dask_array(output):
            chunks = output.chunks
        else:
            chunks = tuple(output_chunks(c, n) for c, n in zip(image.chunks, out_shape))
        chunks = merged(chunks)
        self.target = _blocks_of(output, chunks, np.float64)
        self.weight = None if mask is None else _blocks_of(mask, chunks, bool)
        if not converts_in_blocks(image.dtype, self.ops.request):
            image = image.astype(np.float64)
        self.blocks = KernelBlocks(image, chunks, self.ops)
        self.settings = frozen_settings()  # fixed when the graph is built (SPEC §2)
        self.token = dask.base.tokenize(self.blocks.token, self.target, self.weight,
                                        self.settings)

    def __dask_tokenize__(self):
        return self.token


def _real(value, name: str):
    """The real part of complex data, with one warning (as ``np.asarray(..., float64)`` has).

    Converted chunk by chunk, it warned once per chunk and pass.
    """
    if np.iscomplexobj(value):
        warnings.warn(f"estimate_kernel fits a real kernel: the imaginary part of the {name} "
                      "is discarded", np.exceptions.ComplexWarning, stacklevel=5)
        return np.real(value)
    return value


def _blocks_of(value, chunks, dtype) -> da.Array:
    """``value`` as a dask array of ``dtype`` chunked like the output's blocks."""
    if is_dask_array(value):
        return value.astype(dtype).rechunk(chunks)
    return da.from_array(np.asarray(value, dtype=dtype), chunks=chunks)


def estimate(image, output, kernel_shape, mode, boundary, mask, regularization, tol, maxiter,
             full_output, callback=None):
    """:func:`fftconv.estimate_kernel` of dask arrays: a lazy kernel (and a lazy fit)."""
    problem = _Problem(image, output, kernel_shape, mode, boundary, mask)
    shape = problem.ops.request.kernel.shape
    taps = math.prod(shape)
    solved = dask.delayed(_solve, pure=True)(problem, float(regularization), float(tol),
                                             int(maxiter or default_maxiter(shape)), callback)
    # One array holds the kernel and the fit, so that computing both solves once (a
    # Delayed beside an array is optimized apart from it, and ran the solve twice).
    packed = da.from_delayed(solved, (taps + len(_FIT),), dtype=np.float64)
    kernel = packed[:taps].reshape(shape)
    return (kernel, LazyFit(packed[taps:])) if full_output else kernel


_FIT = ("residual", "relative_residual", "iterations", "converged")


def _solve(problem: _Problem, lam: float, tol: float, maxiter: int,
           callback=None) -> np.ndarray:
    """The fit, by CG on the normal equations, packed: the kernel's values, then the fit's."""
    with _seceded():
        k, fit = _cgnr(lambda p, subtract: _pass(problem, p, subtract),
                       problem.ops.request.kernel.shape, lam, tol, maxiter, callback)
    return np.concatenate([k.ravel(), [float(getattr(fit, name)) for name in _FIT]])


def _unpack_fit(values: np.ndarray) -> KernelFit:
    residual, relative, iterations, converged = (float(v) for v in values)
    return KernelFit(residual, relative, int(iterations), bool(converged))


class LazyFit:
    """A :class:`fftconv.KernelFit` still to be computed (``estimate_kernel`` of dask arrays).

    A dask collection: ``fit.compute()``, or ``dask.compute(kernel, fit)`` to
    solve once for both.  It is optimized as a dask array, like the kernel it
    shares its task with.
    """

    def __init__(self, values: da.Array) -> None:
        self._values = values

    def __dask_graph__(self):
        return self._values.__dask_graph__()

    def __dask_keys__(self):
        return self._values.__dask_keys__()

    def __dask_layers__(self):
        return self._values.__dask_layers__()

    def __dask_tokenize__(self):
        return ("fftconv-fit", self._values.name)

    __dask_optimize__ = staticmethod(da.Array.__dask_optimize__)
    __dask_scheduler__ = staticmethod(da.Array.__dask_scheduler__)

    def __dask_postcompute__(self):
        finalize, args = self._values.__dask_postcompute__()
        return _finalize_fit, (finalize, args)

    def __dask_postpersist__(self):
        rebuild, args = self._values.__dask_postpersist__()
        return _rebuild_fit, (rebuild, args)

    def compute(self, **kwargs) -> KernelFit:
        return dask.compute(self, **kwargs)[0]

    def __repr__(self) -> str:
        return f"LazyFit<{self._values.name}>"


def _finalize_fit(results, finalize, args) -> KernelFit:
    return _unpack_fit(finalize(results, *args))


def _rebuild_fit(dsk, rebuild, args, **kwargs) -> LazyFit:
    return LazyFit(rebuild(dsk, *args, **kwargs))


@contextlib.contextmanager
def _seceded():
    """On a dask.distributed worker, leave its thread pool while the passes run on it."""
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):
        yield
        return
    with worker_client():
        yield


def _cgnr(normal, shape, lam: float, tol: float, maxiter: int, callback=None):
    """CG on ``(AᵀWA + λI) k = AᵀWb``, given ``normal(p, subtract)`` (:func:`_pass`)."""
    k = np.zeros(shape)
    g, bb = normal(k, True)
    s = -g  # AᵀWb
    gamma0 = float(np.vdot(s, s))
    norm = math.sqrt(bb) or 1.0
    if gamma0 == 0:
        return k, KernelFit(math.sqrt(bb), math.sqrt(bb) / norm, 0, True)
    iterations, going = 0, True
    while True:
        p, gamma = s.copy(), float(np.vdot(s, s))
        while iterations < maxiter:
            iterations += 1
            h, qq = normal(p, False)
            delta = qq + lam * float(np.vdot(p, p))
            if delta <= 0:  # p vanished in round-off: nothing left to gain
                break
            alpha = gamma / delta
            k += alpha * p
            s -= alpha * (h + lam * p)
            gamma_new = float(np.vdot(s, s))
            going = reported(callback, iterations, k, gamma_new, gamma0)
            if gamma_new <= tol**2 * gamma0 or not going:
                break
            p = s + (gamma_new / gamma) * p
            gamma = gamma_new
        g, rr = normal(k, True)
        s = -g - lam * k  # the true residual of the normal equations
        converged = float(np.vdot(s, s)) <= tol**2 * gamma0
        if converged or iterations >= maxiter or delta <= 0 or not going:
            residual = math.sqrt(rr)
            return k, KernelFit(residual, residual / norm, iterations, converged)


def _pass(problem: _Problem, p: np.ndarray, subtract: bool) -> tuple[np.ndarray, float]:
    """``AᵀW(A·p − b)`` and ``‖W(A·p − b)‖²`` in one pass (``b`` only when ``subtract``)."""
    arrays = pass_graph(problem, p, subtract)
    part, sq = dask.compute(*arrays, **_pool_size(arrays))
    return np.flip(part), float(sq)  # the parts correlate with the flipped residual


def _pool_size(arrays) -> dict:
    """A pass's threads: as many as cores, as from the main thread.

    dask's threaded scheduler, called from any other thread (here, the solve's
    task) with no ``num_workers`` configured, starts a pool of Python's default
    size, cores + 4: on two cores, six tasks at once and a 0.7 GiB peak at
    8192² where two took 0.36 GiB.
    """
    import dask.threaded
    from dask.base import get_scheduler

    if (get_scheduler(collections=arrays) is dask.threaded.get
            and dask.config.get("num_workers", None) is None):
        return {"num_workers": dask.system.CPU_COUNT}
    return {}


def pass_graph(problem: _Problem, p: np.ndarray, subtract: bool) -> tuple[da.Array, da.Array]:
    """The sums of one pass, lazily: the flipped ``AᵀW(A·p − b)`` and ``‖W(A·p − b)‖²``."""
    from dask.highlevelgraph import HighLevelGraph

    blocks = problem.blocks
    kernel = dask.delayed(p, pure=True)
    name = "fftconv-estimate-" + dask.base.tokenize(problem, kernel, subtract)
    layer = dict(blocks.layer)
    dependencies = [*blocks.dependencies, kernel]
    target = problem.target if subtract else None
    for array in (target, problem.weight):
        if array is not None:
            dependencies.append(array)
    squares = {}
    for index, nested in blocks.pieces.items():
        task = (name + "-block", *index)
        layer[task] = (_normal_part, nested, kernel.key,
                       None if problem.weight is None else (problem.weight.name, *index),
                       None if target is None else (target.name, *index),
                       blocks.summed, problem.settings)
        layer[blocks.key(name, index)] = (_first, task)
        squares[(name + "-squares", *index)] = (_second, task, len(index))
    graph = HighLevelGraph.from_collections(name, layer, dependencies=dependencies)
    parts = da.Array(graph, name, blocks.chunks, meta=np.empty((0,) * len(blocks.chunks)))
    graph = HighLevelGraph.from_collections(name + "-squares", squares, dependencies=[parts])
    numblocks = tuple((1,) * len(c) for c in problem.target.chunks)
    sums = da.Array(graph, name + "-squares", numblocks, meta=np.empty((0,) * len(numblocks)))
    return parts.sum(axis=blocks.summed), sums.sum()


def _normal_part(pieces, kernel: np.ndarray, weight, target, summed: tuple[int, ...],
                 settings: dict) -> tuple[np.ndarray, float]:
    """One block's share: ``r = W(region ⊛ kernel − b)``, its correlation with the region, ‖r‖².

    Both are circular convolutions at one fast shape covering the region (the
    ``valid`` window of the one, the kernel-sized lags of the other never
    wrap), so the region is transformed once for both, and the last inverse
    computes only those lags (:func:`fftconv._ops.lazy_adjoint.correlation_lags`):
    three and a half transforms a block where two planned convolutions took five.
    """
    with _config.set(**settings):
        transform, spectrum, region = region_spectrum(pieces, tuple(range(kernel.ndim)),
                                                      np.float64)
        if kernel.any():
            kernel_spectrum = spectrum_for(worker_spectra("fftconv-estimate"), transform,
                                           kernel)
            valid = window_slices(kernel.ndim, transform.axes, [m - 1 for m in kernel.shape],
                                  region)
            r = transform.inverse(spectrum * kernel_spectrum)[valid]
        else:  # the first and the last pass of a zero kernel: nothing to transform
            r = np.zeros([n - m + 1 for n, m in zip(region, kernel.shape)])
        if target is not None:
            r = r - target
        if weight is not None:
            r = r * weight
        part = correlation_lags(transform, spectrum, r, kernel.shape)
    return np.expand_dims(part, summed), float(np.vdot(r, r))


def _first(pair):
    return pair[0]


def _second(pair, ndim: int) -> np.ndarray:
    return np.full((1,) * ndim, pair[1])
