"""A kernel file taken with sense: its sum checked, normalised on request, in the image's
working precision.

A raw bead PSF is counts (a uint16 PSF summing to 64 844 turned a mean of 2000
into 1.28e8); a kernel that sums far from 1 (and from 0: a derivative or a
difference kernel sums to 0 on purpose) gets a one-line warning naming
``--normalize``.  A float64 PSF no longer doubles a float32 output: the kernel
is cast to the image's working dtype (float32 for integer and float32 images).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from fftconv._io.formats import InputError

# How far from 1 a sum may be before it is worth a word: a PSF cropped from a
# measurement, or rounded, sums within a percent of 1.
SUM_TOLERANCE = 0.01


def working_dtype(image_dtype: np.dtype, kernel_dtype: np.dtype, dtype: str | None) -> np.dtype:
    """The dtype the run computes in: ``--dtype``'s when it is a float, else the image's
    (float32 for integers), complex when the kernel is."""
    if dtype is not None and np.dtype(dtype).kind in "fc":
        work = np.dtype(dtype)
    else:
        work = np.result_type(image_dtype, np.float32)
    if np.dtype(kernel_dtype).kind == "c":
        work = np.result_type(work, np.complex64)
    return work


def one_kernel_axes(kernel_ndim: int, image_ndim: int, axes) -> tuple[int, ...] | None:
    """The axes one kernel spans when the kernel holds one per channel (it has the image's
    dimensions and fewer are convolved), else None (it is one kernel).

    Examples
    --------
    >>> one_kernel_axes(4, 4, (1, 2, 3)), one_kernel_axes(3, 4, (1, 2, 3))
    ((1, 2, 3), None)
    """
    if axes is None or kernel_ndim != image_ndim:
        return None
    return tuple(a % image_ndim for a in axes)


def sensible_kernel(kernel: np.ndarray, spec: str, normalize: bool, work: np.dtype,
                    over: tuple[int, ...] | None = None) -> np.ndarray:
    """``kernel`` divided by its sum if ``normalize``, else as it is with a warning when its
    sum is far from 1 and from 0; in ``work``'s precision.

    ``over``: the kernel's axes that one kernel spans, when it holds one per channel
    (or time point) along the others: each is then summed, and divided, alone.

    Examples
    --------
    >>> k = sensible_kernel(np.full((2, 2), 3, np.uint16), "k.npy", True, np.dtype("float32"))
    >>> k.dtype, float(k.sum())
    (dtype('float32'), 1.0)
    >>> per_channel = sensible_kernel(np.arange(1, 9).reshape(2, 2, 2), "k.npy", True,
    ...                               np.dtype("float32"), over=(1, 2))
    >>> per_channel.sum(axis=(1, 2)).tolist()
    [1.0, 1.0]
    """
    wide = np.complex128 if np.iscomplexobj(kernel) else np.float64
    totals = np.sum(kernel, axis=over, dtype=wide, keepdims=True)
    if normalize:
        if not np.all(totals != 0) or not np.all(np.isfinite(totals)):
            bad = complex(totals.flat[np.flatnonzero((totals == 0) | ~np.isfinite(totals))[0]])
            raise InputError(f"kernel {spec!r} sums to {bad.real:g}: --normalize cannot "
                             "divide by it")
        kernel = np.asarray(kernel, dtype=np.result_type(kernel.dtype, np.float64)) / totals
    else:
        for total, part in zip(totals.ravel(), _parts(kernel, over)):
            if _far_from_one_and_zero(part, complex(total)):
                shown = _shown(complex(total))
                print(f"fftconv: warning: kernel {spec!r} sums to {shown}, not 1: the output "
                      f"is {shown} times as bright as the input; --normalize divides it by "
                      "its sum", file=sys.stderr, flush=True)
                break
    if np.iscomplexobj(kernel) and np.dtype(work).kind != "c":
        work = np.result_type(work, np.complex64)
    return np.asarray(kernel, dtype=work)


def _parts(kernel: np.ndarray, over: tuple[int, ...] | None):
    """Each kernel of ``kernel``: the whole, or one per index of the axes not ``over``."""
    if over is None:
        yield kernel
        return
    rest = [ax for ax in range(kernel.ndim) if ax not in over]
    moved = np.moveaxis(kernel, rest, range(len(rest)))
    for index in np.ndindex(*moved.shape[:len(rest)]):
        yield moved[index]


def _far_from_one_and_zero(kernel: np.ndarray, total: complex) -> bool:
    magnitude = float(np.abs(kernel).sum())
    if not math.isfinite(magnitude) or magnitude == 0:
        return False
    if abs(total) <= 1e-6 * magnitude:  # sums to 0 on purpose (a derivative, a difference)
        return False
    return abs(total - 1) > SUM_TOLERANCE


def _shown(total: complex) -> str:
    return f"{total.real:.6g}" if total.imag == 0 else f"{total:.6g}"


INTEGER_DTYPES = ("uint8", "uint16", "int16")


def to_integer(lazy, dtype: str):
    """A float result as ``dtype``: rounded to the nearest integer and clipped to the type's
    range (saturated, as image software stores it); NaN becomes 0."""
    import dask.array as da

    info = np.iinfo(dtype)
    rounded = da.clip(da.rint(lazy), info.min, info.max)
    return da.where(da.isnan(rounded), 0, rounded).astype(dtype)
