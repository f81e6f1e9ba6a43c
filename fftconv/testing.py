"""Conformance suite for FFT backend plugins (contract version 1).

A plugin author runs it in their own tests::

    from fftconv.testing import check_backend
    from my_package import MyBackend

    def test_conforms():
        check_backend(MyBackend())

It raises :class:`AssertionError` naming the first broken promise.
"""

from __future__ import annotations

import concurrent.futures
import itertools

import numpy as np

from fftconv._registry.protocol import CONTRACT_VERSION, REQUIRED_METHODS, Capabilities

_CASES = [((16,), (0,), (16,)), ((15,), (0,), (20,)), ((6, 10), (0, 1), (8, 12)),
          ((4, 6, 5), (1, 2), (6, 5)), ((5, 7), (1,), (7,)), ((7, 9, 3), (0, 1), (9, 9))]
_TOL = {np.dtype("float32"): 2e-5, np.dtype("float64"): 1e-12,
        np.dtype("complex64"): 2e-5, np.dtype("complex128"): 1e-12}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _close(got, expected, dtype, what: str) -> None:
    scale = max(np.abs(expected).max(), 1.0)
    err = np.abs(np.asarray(got, dtype=np.complex128) - expected).max()
    _check(err <= _TOL[np.dtype(dtype)] * scale * 10,
           f"{what}: max error {err:.3g} against numpy.fft")


def _sample(rng, shape, dtype):
    dtype = np.dtype(dtype)
    x = rng.uniform(-1, 1, shape)
    if dtype.kind == "c":
        x = x + 1j * rng.uniform(-1, 1, shape)
    return x.astype(dtype)


def check_attributes(backend) -> None:
    """Name, contract version, version string, capabilities and every method."""
    for method in REQUIRED_METHODS:
        _check(callable(getattr(backend, method, None)), f"missing method {method}()")
    _check(isinstance(getattr(backend, "name", None), str) and backend.name,
           "name must be a non-empty str")
    _check(getattr(backend, "contract_version", None) == CONTRACT_VERSION,
           f"contract_version must be {CONTRACT_VERSION}")
    _check(isinstance(getattr(backend, "version", None), str), "version must be a str")
    _check(isinstance(getattr(backend, "capabilities", None), Capabilities),
           "capabilities must be a fftconv Capabilities")


def check_transforms(backend, rng) -> None:
    """Every transform against numpy.fft; precision kept; input untouched."""
    for (shape, axes, s), real in itertools.product(_CASES, (True, False)):
        s = tuple(s[: len(axes)])
        for dtype in ("float32", "float64") if real else ("complex64", "complex128"):
            if np.dtype(dtype) not in backend.capabilities.native_dtypes:
                continue
            x = _sample(rng, shape, dtype)
            before = x.copy()
            forward = (backend.rfftn if real else backend.fftn)(x, s, axes, 1)
            _check(np.array_equal(x, before), f"{'r' if real else ''}fftn modified its input")
            exact = (np.fft.rfftn if real else np.fft.fftn)(x.astype(np.result_type(
                x.dtype, np.float64)), s=s, axes=axes)
            what = f"{'rfftn' if real else 'fftn'} {dtype} shape={shape} s={s} axes={axes}"
            _check(forward.shape == exact.shape, f"{what}: shape {forward.shape}, "
                                                 f"expected {exact.shape}")
            _check(forward.dtype == np.result_type(x.dtype, np.complex64),
                   f"{what}: dtype {forward.dtype} does not keep the input's precision")
            _close(forward, exact, dtype, what)
            spectrum = forward.copy()
            inverse = (backend.irfftn if real else backend.ifftn)(spectrum, s, axes, 1)
            _check(np.array_equal(spectrum, forward), f"inverse of {what} modified its input")
            expected = np.asarray(x)
            index = tuple(slice(0, n) for n in inverse.shape)
            padded = np.zeros(inverse.shape, dtype=np.complex128)
            crop = tuple(slice(0, min(a, b)) for a, b in zip(x.shape, inverse.shape))
            padded[crop] = expected[crop]
            _check(inverse.dtype == x.dtype, f"inverse of {what}: dtype {inverse.dtype}, "
                                             f"expected {x.dtype}")
            _close(inverse[index], padded, dtype, f"inverse of {what}")


def _strided(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` as every other element of a larger array: a view with gaps."""
    wide = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
    every_other = tuple(slice(None, None, 2) for _ in a.shape)
    wide[every_other] = a
    return wide[every_other]


def _into(backend, name: str, x, out, axes) -> None:
    method = getattr(backend, name, None)
    _check(callable(method), f"capabilities declare {name}, which the backend lacks")
    method(x, out, axes, 1)


def check_optional_methods(backend, rng) -> None:
    """The optional ``*_into`` methods a backend declares agree with the transforms they mirror.

    Each is run on plain arrays and on strided views (the Dask path hands
    them slices of its buffers); the complex pair also in place.
    """
    declared = backend.capabilities.declared_methods()
    for (shape, axes, _), dtype in itertools.product(_CASES, ("float32", "float64")):
        if np.dtype(dtype) not in backend.capabilities.native_dtypes:
            continue
        cdtype = np.result_type(dtype, np.complex64)
        half = list(shape)
        half[axes[-1]] = shape[axes[-1]] // 2 + 1
        s = tuple(shape[ax] for ax in axes)
        for strided in (False, True):
            what = f"{dtype} shape={shape} axes={axes}{' (strided views)' if strided else ''}"
            view = _strided if strided else np.asarray

            x = view(_sample(rng, shape, dtype))
            before = x.copy()
            if "rfftn_into" in declared:
                out = view(np.full(half, np.nan, cdtype))
                _into(backend, "rfftn_into", x, out, axes)
                _check(np.array_equal(x, before), f"rfftn_into {what} modified its input")
                _close(out, backend.rfftn(before, s, axes, 1), dtype, f"rfftn_into {what}")
            if "irfftn_into" in declared:
                spectrum = view(backend.rfftn(before, s, axes, 1))
                back = view(np.full(shape, np.nan, np.dtype(dtype)))
                _into(backend, "irfftn_into", spectrum, back, axes)
                _close(back, before, dtype, f"irfftn_into {what}")
            for name, mirror in (("fftn_into", backend.fftn), ("ifftn_into", backend.ifftn)):
                if name not in declared:
                    continue
                z = view(_sample(rng, shape, cdtype))
                kept = z.copy()
                expected = mirror(kept, s, axes, 1)
                out = view(np.full(shape, np.nan, cdtype))
                _into(backend, name, z, out, axes)
                _check(np.array_equal(z, kept), f"{name} {what} modified its input")
                _close(out, expected, cdtype, f"{name} {what}")
                _into(backend, name, z, z, axes)
                _close(z, expected, cdtype, f"{name} {what} in place")


def check_threads(backend, rng) -> None:
    """``workers`` accepted; concurrent calls from many threads give identical results."""
    x = _sample(rng, (64, 48), "float64")
    expected = backend.rfftn(x, (64, 48), (0, 1), 1)
    threaded = backend.rfftn(x, (64, 48), (0, 1), 2)
    _close(threaded, expected.astype(np.complex128), "float64", "rfftn with workers=2")

    def hammer(_):
        return backend.irfftn(backend.rfftn(x, (64, 48), (0, 1), 1), (64, 48), (0, 1), 1)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(hammer, range(64)))
    for result in results:
        _check(np.array_equal(result, results[0]), "concurrent calls gave different results")
    _close(results[0], x, "float64", "round trip from 8 threads")


def check_fast_lengths(backend) -> None:
    """``next_fast_len(n)`` is >= n, monotone and idempotent."""
    previous = 1
    for n in [*range(1, 300), 1021, 4099, 65537]:
        for real in (True, False):
            m = backend.next_fast_len(n, real)
            _check(isinstance(m, int | np.integer) and m >= n,
                   f"next_fast_len({n}, real={real}) = {m!r} < {n}")
            _check(backend.next_fast_len(m, real) == m,
                   f"next_fast_len is not idempotent at {m}")
        _check(m >= previous, f"next_fast_len is not monotone at {n}")
        previous = m


def check_backend(backend, *, seed: int = 0) -> None:
    """Run the whole conformance suite on a backend instance.

    Examples
    --------
    >>> from fftconv.backends.numpy_ import NumpyBackend
    >>> check_backend(NumpyBackend())
    """
    rng = np.random.default_rng(seed)
    check_attributes(backend)
    check_transforms(backend, rng)
    check_optional_methods(backend, rng)
    check_threads(backend, rng)
    check_fast_lengths(backend)
