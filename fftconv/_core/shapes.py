"""Axes, modes, output windows and boundary extents: one helper per step.

Every mode of SPEC §1.1 is reduced here to the same question: which window
``[a, b)`` of the *full* convolution of the extended image is wanted, and how
much extension on each side does that window read.  The methods then only
ever compute "a window of a linear convolution".
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

MODES = ("full", "same", "valid")
BOUNDARIES = ("constant", "reflect", "mirror", "nearest", "wrap")

Window = tuple[int, int]


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError naming both."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {_quoted(allowed)}")
    return value


def stand_in(name: str, value: object, dtype=None, fill: float = 0.0) -> np.ndarray:
    """An array of ``value``'s shape, every element ``fill``, without memory, to plan
    for: ``value`` is a shape (an int or a sequence of them) or an array, whose dtype
    it takes unless ``dtype`` is given.

    A shape's dtype is float32 unless ``dtype`` is given.

    Examples
    --------
    >>> stand_in("image_shape", (4, 5)).shape, stand_in("image_shape", 7).dtype
    ((4, 5), dtype('float32'))
    >>> stand_in("image_shape", np.ones((2, 3))).dtype
    dtype('float64')
    """
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        shape, own = tuple(value.shape), np.dtype(value.dtype)
    else:
        try:
            shape = ((operator.index(value),) if np.ndim(value) == 0
                     else tuple(operator.index(n) for n in value))  # type: ignore[union-attr]
        except TypeError:
            raise TypeError(f"{name} must be a shape (a tuple of ints) or an array, "
                            f"not {value!r}") from None
        own = np.dtype(np.float32)
    if any(n < 0 for n in shape):
        raise ValueError(f"{name}={shape} has a negative length")
    return np.broadcast_to(np.full((), fill, dtype=own if dtype is None else dtype), shape)


def normalize_axes(axes: object, image_ndim: int, kernel_ndim: int) -> tuple[int, ...]:
    """Return the convolved axes as non-negative ints, in the order the kernel's axes map to.

    ``axes=None`` convolves every axis and needs ``kernel_ndim == image_ndim``.
    """
    if axes is None:
        if kernel_ndim != image_ndim:
            raise ValueError(
                f"kernel.ndim={kernel_ndim} must equal image.ndim={image_ndim} when axes=None; "
                f"pass axes= to apply a {kernel_ndim}-D kernel to some axes of the image"
            )
        return tuple(range(image_ndim))
    raw = (axes,) if np.ndim(axes) == 0 else tuple(axes)  # type: ignore[arg-type]
    try:
        out = tuple(operator.index(a) for a in raw)
    except TypeError:
        raise TypeError(f"axes={axes!r} must be an int or a sequence of ints") from None
    if not out:
        raise ValueError("axes=() convolves nothing; give at least one axis")
    for a in out:
        if not -image_ndim <= a < image_ndim:
            raise ValueError(f"axes={axes!r} is out of range for an image with ndim={image_ndim}")
    out = tuple(a % image_ndim for a in out)
    if len(set(out)) != len(out):
        raise ValueError(f"axes={axes!r} contains duplicate axes")
    if kernel_ndim not in (image_ndim, len(out)):
        raise ValueError(
            f"kernel.ndim={kernel_ndim} fits neither image.ndim={image_ndim} (broadcast over the "
            f"other axes) nor len(axes)={len(out)} (one kernel applied to every slice)"
        )
    return out


def align_kernel(kernel: np.ndarray, axes: tuple[int, ...], image_ndim: int) -> np.ndarray:
    """Give ``kernel`` the image's ndim: kernel axis ``i`` lands on image axis ``axes[i]``."""
    if kernel.ndim == image_ndim:
        return kernel
    order = np.argsort(axes)
    moved = kernel.transpose(order)
    shape = [1] * image_ndim
    for ax in axes:
        shape[ax] = kernel.shape[axes.index(ax)]
    return moved.reshape(shape)


def batch_shape(image_shape: Sequence[int], kernel_shape: Sequence[int],
                axes: tuple[int, ...]) -> list[int]:
    """Broadcast the non-convolved axes (equal lengths, or one of them 1)."""
    out = []
    for ax, (n, k) in enumerate(zip(image_shape, kernel_shape)):
        if ax in axes:
            out.append(-1)
        elif n == k or k == 1 or n == 1:
            out.append(max(n, k))
        else:
            raise ValueError(
                f"image axis {ax} (length {n}) and kernel axis {ax} (length {k}) are not "
                f"convolved and do not broadcast: lengths must be equal or one of them 1"
            )
    return out


def output_window(n: int, k: int, mode: str) -> Window:
    """The slice ``[a, b)`` of the full result (length ``n + k - 1``) that ``mode`` keeps."""
    if mode == "full":
        return 0, n + k - 1
    if mode == "same":
        start = (k - 1) // 2
        return start, start + n
    if k > n:
        raise ValueError(
            f"mode='valid' needs the kernel to fit in the image on every convolved axis; "
            f"kernel length {k} > image length {n}"
        )
    return k - 1, n


def extension(n: int, k: int, window: Window) -> tuple[int, int]:
    """How far the window ``[a, b)`` of the full result reads beyond the image, per side."""
    a, b = window
    return max(0, k - 1 - a), max(0, b - n)


def extension_doubles(image_shape: Sequence[int], kernel_shape: Sequence[int],
                      axes: Sequence[int], windows: Sequence[Window]) -> bool:
    """Whether extending the image by what ``windows`` read would more than double it
    (along ``axes``): then the box route sums without the extension, and a dask image
    whole along those axes skips the tiling.

    Examples
    --------
    >>> extension_doubles((128,), (20000,), (0,), [(10000, 10128)])
    True
    >>> extension_doubles((128,), (5,), (0,), [(2, 130)])
    False
    """
    extended = math.prod(image_shape[ax] + sum(extension(image_shape[ax], kernel_shape[ax],
                                                         window))
                         for ax, window in zip(axes, windows))
    return extended > 2 * math.prod(image_shape[ax] for ax in axes)


def circular_length(data: Window, k: int, window: Window) -> int:
    """Smallest circular length that computes ``window`` of ``data ⊛ kernel`` without aliasing.

    ``data = [d0, d1)`` are the positions holding the (zero-extended) data,
    ``window = [o0, o1)`` the wanted positions of the full linear result.
    With the data placed at index 0, output ``j`` lands at ``j - d0``; it is
    unaliased when no other position of the full result ``[d0, d1 + k - 1)``
    is congruent to it.
    """
    d0, d1 = data
    o0, o1 = window
    return max(o1 - d0, d1 + k - 1 - o0)
