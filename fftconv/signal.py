"""``scipy.signal``'s convolutions, computed by fftconv: ``from fftconv import signal``.

The signatures, defaults (``mode="full"``), the centring of ``same``, the
swap of the inputs for ``valid``, ``axes=`` and the output dtypes are
scipy's.  What differs from scipy.signal:

==========================  ==================================================================
every function              fftconv's planner picks the method (direct, FFT, overlap-add or
                            a structured kernel's passes): exact to SPEC §1.3, so the last
                            bits may differ from scipy's; a dask array in gives a lazy one out
``convolve(method=)``       ``"direct"`` and ``"fft"`` force fftconv's methods; integer
                            results are the rounded float64 sums, as scipy's ``"fft"``
                            method gives them (scipy's ``"direct"`` sums in the integer type)
float16 and bool inputs     ``convolve``/``correlate`` accept them (scipy's direct method
                            refuses them)
``choose_conv_method``      fftconv's planner's choice (``"fft"`` for its FFT and overlap-add
                            methods); ``measure=True`` times fftconv's two methods
==========================  ==================================================================

What differs from :func:`fftconv.convolve` itself: the default mode is ``full``
here (``same`` there), and integer inputs keep an integer result.

Examples
--------
>>> import numpy as np, scipy.signal
>>> from fftconv import signal
>>> a, b = np.arange(6.0), np.array([1.0, 2.0, 3.0])
>>> signal.fftconvolve(a, b)
array([ 0.,  1.,  4., 10., 16., 22., 22., 15.])
>>> bool(np.allclose(signal.fftconvolve(a, b, "same"), scipy.signal.fftconvolve(a, b, "same")))
True
"""

from __future__ import annotations

import time

import numpy as np

from fftconv._core.lazy import is_dask_array
from fftconv._ops.api import convolve as _convolve
from fftconv._ops.api import correlate as _correlate
from fftconv._ops.api import plan as _plan

__all__ = ["choose_conv_method", "convolve", "correlate", "fftconvolve", "oaconvolve"]

MODES = ("full", "valid", "same")


def _array(value):
    return value if is_dask_array(value) else np.asarray(value)


def _check(in1, in2, mode: str, axes) -> tuple[tuple[int, ...], bool]:
    """scipy's checks; the convolved axes and whether ``valid`` swaps the inputs."""
    if mode not in MODES:
        raise ValueError("acceptable mode flags are 'valid', 'same', or 'full'")
    if in1.ndim != in2.ndim:
        raise ValueError("in1 and in2 should have the same dimensionality")
    if axes is None:
        axes = tuple(range(in1.ndim))
    else:
        axes = tuple(sorted({int(a) % in1.ndim for a in np.atleast_1d(axes)}))
    for ax in range(in1.ndim):
        if ax not in axes and in1.shape[ax] != in2.shape[ax] and 1 not in (
                in1.shape[ax], in2.shape[ax]):
            raise ValueError("incompatible shapes for in1 and in2: "
                             f"{in1.shape} and {in2.shape}")
    swap = False
    if mode == "valid":
        first = all(in1.shape[ax] >= in2.shape[ax] for ax in axes)
        second = all(in2.shape[ax] >= in1.shape[ax] for ax in axes)
        if not (first or second):
            raise ValueError("For 'valid' mode, one must be at least as large as the other "
                             "in every dimension")
        swap = not first
    return axes, swap


def _fft_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype scipy.fft computes ``dtype`` in: integers and bools in double, float16 in
    single, the rest as they are."""
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


def _run(in1, in2, mode, axes, method: str, dtype: np.dtype, correlate: bool):
    in1, in2 = _array(in1), _array(in2)
    if in1.size == 0 or in2.size == 0:
        return np.array([], dtype=dtype)
    axes, swap = _check(in1, in2, mode, axes)
    work = _fft_dtype(dtype)  # integers and bools summed in float64, float16 in float32
    if correlate and swap:
        # correlate(a, b) is convolve(a, rev(conj(b))), and convolution commutes.
        out = _convolve(np.flip(np.conj(in2), axis=axes), in1, mode, axes=axes, method=method,
                        dtype=work)
    elif correlate:
        out = _correlate(in1, in2, mode, axes=axes, method=method, dtype=work)
    else:
        first, second = (in2, in1) if swap else (in1, in2)
        out = _convolve(first, second, mode, axes=axes, method=method, dtype=work)
    if dtype.kind in "iu":
        out = np.around(out)
    return out if out.dtype == dtype else out.astype(dtype)


def fftconvolve(in1, in2, mode="full", axes=None):
    """Convolve two N-D arrays, as ``scipy.signal.fftconvolve``.

    The result's dtype is scipy's: what scipy.fft computes each input in
    (integers in float64, float16 in float32), combined.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.fftconvolve(np.ones((3, 3), np.float32), np.ones((2, 2), np.float32)).dtype
    dtype('float32')
    """
    in1, in2 = _array(in1), _array(in2)
    dtype = np.result_type(_fft_dtype(in1.dtype), _fft_dtype(in2.dtype))
    return _run(in1, in2, mode, axes, "auto", dtype, correlate=False)


def oaconvolve(in1, in2, mode="full", axes=None):
    """Convolve two N-D arrays, as ``scipy.signal.oaconvolve`` (the same as :func:`fftconvolve`:
    fftconv's planner decides whether overlap-add pays).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.oaconvolve(np.ones(5), np.ones(2), mode="valid")
    array([2., 2., 2., 2.])
    """
    return fftconvolve(in1, in2, mode, axes)


def _method(method: str) -> str:
    if method not in ("auto", "direct", "fft"):
        raise ValueError("Acceptable method flags are 'auto', 'direct', or 'fft'.")
    return method


def convolve(in1, in2, mode="full", method="auto"):
    """Convolve two N-D arrays, as ``scipy.signal.convolve`` (integers stay integers).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.convolve(np.array([1, 2, 3]), np.array([0, 1, 0, 5]))
    array([ 0,  1,  2,  8, 10, 15])
    """
    in1, in2 = _array(in1), _array(in2)
    return _run(in1, in2, mode, None, _method(method), np.result_type(in1.dtype, in2.dtype),
                correlate=False)


def correlate(in1, in2, mode="full", method="auto"):
    """Cross-correlate two N-D arrays, as ``scipy.signal.correlate`` (``in2`` conjugated).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.correlate(np.arange(5.0), np.arange(3.0), mode="valid")
    array([ 5.,  8., 11.])
    """
    in1, in2 = _array(in1), _array(in2)
    return _run(in1, in2, mode, None, _method(method), np.result_type(in1.dtype, in2.dtype),
                correlate=True)


def choose_conv_method(in1, in2, mode="full", measure=False):
    """``"direct"`` or ``"fft"``: the method fftconv's planner picks for these inputs.

    With ``measure=True``, both are timed (the best of a few runs) and the faster is
    returned with the times, as ``(method, {"direct": s, "fft": s})``.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.choose_conv_method(np.ones((512, 512)), np.ones((64, 64)))
    'fft'
    """
    in1, in2 = _array(in1), _array(in2)
    _check(in1, in2, mode, None)
    if measure:
        times = {m: _best_time(in1, in2, mode, m) for m in ("fft", "direct")}
        return min(times, key=times.get), times
    dtype = np.result_type(in1.dtype, in2.dtype, np.float32)
    chosen = _plan(in1.shape, in2.shape, dtype=dtype, mode=mode).method
    return "direct" if chosen == "direct" else "fft"


def _best_time(in1, in2, mode, method: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        convolve(in1, in2, mode, method)
        best = min(best, time.perf_counter() - start)
    return best
