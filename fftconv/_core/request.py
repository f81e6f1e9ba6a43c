"""Validate the arguments of one convolve/correlate call (SPEC §1.6) into a Request."""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from fftconv._core import settings as _settings
from fftconv._core.masks import refuse_masked
from fftconv._core.shapes import (
    BOUNDARIES,
    MODES,
    Window,
    align_kernel,
    batch_shape,
    check_choice,
    normalize_axes,
    output_window,
)

# The general methods, named once: the planner prices them, the executors run them.
GENERAL_METHODS = ("direct", "fft", "overlap-add")
METHOD_NAMES = ("auto", *GENERAL_METHODS)
NAN_POLICIES = ("propagate", "raise", "interpolate")
_BAD_KINDS = {"O": "object", "U": "string", "S": "bytes", "M": "datetime",
              "m": "timedelta", "V": "structured"}


@dataclasses.dataclass(frozen=True)
class Request:
    """One validated call: arrays in the working dtype, kernel in convolution orientation."""

    image: np.ndarray
    kernel: np.ndarray
    axes: tuple[int, ...]
    windows: tuple[Window, ...]
    mode: str
    boundary: str
    cval: complex
    dtype: np.dtype
    method: str
    nan_policy: str

    def replace(self, **changes) -> Request:
        """``dataclasses.replace``, in a sixth of its time (0.5 µs against 2.9).

        Every call of a :class:`~fftconv.Convolver` makes one; a request has no
        ``__post_init__`` to run, only fields to copy.
        """
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"Request has no field {sorted(unknown)[0]!r}")
        new = object.__new__(Request)
        new.__dict__.update(self.__dict__, **changes)  # frozen: past __setattr__
        return new


_FIELDS = frozenset(field.name for field in dataclasses.fields(Request))


def as_array(value: object, name: str) -> np.ndarray:
    """``np.asarray`` with the dtype and emptiness checks of SPEC §1.6; no masked values."""
    refuse_masked(value, name)
    _check_size(value, name)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise TypeError(f"{name} could not be read as an array: {err}") from None
    kind = array.dtype.kind
    if kind in _BAD_KINDS:
        raise TypeError(
            f"{name} has dtype {array.dtype} ({_BAD_KINDS[kind]}); use a numeric dtype "
            "(bool, integer, float or complex)"
        )
    if array.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a scalar")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); give at least one element")
    return array


def _check_size(value: object, name: str) -> None:
    """Refuse an array-like stored elsewhere (a zarr array, an h5py dataset) that reading
    whole would take more than ``memory_limit`` (or half this machine's memory) for."""
    if isinstance(value, np.ndarray) or not hasattr(value, "shape") or \
            not hasattr(value, "dtype"):
        return
    try:
        nbytes = math.prod(int(n) for n in value.shape) * np.dtype(value.dtype).itemsize
    except (TypeError, ValueError):
        return
    limit = _settings.resolve().memory_limit or _settings.half_the_memory()
    if nbytes <= limit:
        return
    kind = type(value).__module__.partition(".")[0]
    lazy = "dask.array.from_zarr(x)" if kind == "zarr" else "dask.array.from_array(x)"
    raise ValueError(f"{name} is a {kind} {type(value).__name__} of {nbytes / 2**30:.3g} GiB, "
                     "more "
                     f"than the {limit / 2**30:.3g} GiB it may take in memory; pass it as "
                     f"a dask array, {lazy}, and fftconv reads it chunk by chunk")


def result_dtype(image: np.ndarray, kernel: np.ndarray, dtype: object) -> np.dtype:
    """SPEC §1.3: ``result_type(image, kernel, float32)``, or ``dtype=`` if given."""
    natural = np.result_type(image.dtype, kernel.dtype, np.float32)
    if dtype is None:
        return natural
    try:
        chosen = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"dtype={dtype!r} is not a dtype") from None
    if chosen.kind not in "fc":
        raise TypeError(f"dtype={chosen} must be a floating or complex dtype "
                        "(for example 'float32', 'float64', 'complex64')")
    if natural.kind == "c" and chosen.kind != "c":
        raise TypeError(f"dtype={chosen} would drop the imaginary part of a complex result; "
                        "use a complex dtype")
    return chosen


def check_cval(cval: object, dtype: np.dtype) -> complex:
    if isinstance(cval, bool) or not isinstance(cval, numbers.Number):
        raise TypeError(f"cval={cval!r} must be a number")
    if dtype.kind != "c" and isinstance(cval, complex) and cval.imag != 0:
        raise TypeError(f"cval={cval!r} is complex but the result dtype {dtype} is real")
    return cval.real if dtype.kind != "c" else cval  # type: ignore[union-attr,return-value]


def build_request(image, kernel, mode, boundary, cval, axes, method, nan_policy, dtype,
                  *, flip: bool) -> Request:
    """Validate everything and bring image and kernel to the working dtype and layout.

    ``flip=True`` (correlate) turns the kernel into ``conj(flip(kernel))`` on the
    convolved axes, so everything downstream is a convolution.
    """
    check_choice("mode", mode, MODES)
    check_choice("boundary", boundary, BOUNDARIES)
    check_choice("method", method, METHOD_NAMES)
    check_choice("nan_policy", nan_policy, NAN_POLICIES)
    image = as_array(image, "image")
    kernel = as_array(kernel, "kernel")
    work = result_dtype(image, kernel, dtype)
    cval = check_cval(cval, work)
    conv_axes = normalize_axes(axes, image.ndim, kernel.ndim)
    kernel = align_kernel(kernel, conv_axes, image.ndim)
    ordered = tuple(sorted(conv_axes))
    batch_shape(image.shape, kernel.shape, ordered)
    windows = tuple(output_window(image.shape[ax], kernel.shape[ax], mode) for ax in ordered)
    kernel = np.asarray(kernel, dtype=work)
    if flip:
        kernel = np.flip(kernel, axis=ordered)
        if work.kind == "c":
            kernel = np.conj(kernel)
    return Request(at_dtype(image, work), kernel, ordered, windows, mode, boundary,
                   cval, work, method, nan_policy)


def at_dtype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` converted to ``dtype``; a broadcast array stays a broadcast view.

    Shapes-only callers (``plan``, the Dask graph builder) pass broadcast
    stand-ins of the image: converting one whole would allocate the image
    (1 GiB for a 16384² uint16 image going float32).  Only the distinct
    values are converted.
    """
    if array.dtype == dtype or array.size == 0 or 0 not in array.strides:
        return np.asarray(array, dtype=dtype)
    core = array[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in array.strides)]
    return np.broadcast_to(core.astype(dtype), array.shape)
