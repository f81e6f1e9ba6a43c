"""Which axes a command-line run convolves, and the line that says so.

Where the input's metadata types its axes (OME-Zarr, OME-TIFF, ImageJ TIFF, a
zarr array's dimension names), channel and time axes are never convolved: a
kernel of fewer dimensions runs over the space axes, and a kernel with as
many dimensions as the input is one kernel per channel (or time point), or
the same for all where it is 1 long there.  ``--axes`` overrides.
"""

from __future__ import annotations

from collections.abc import Sequence

from fftconv._core.shapes import normalize_axes
from fftconv._io.file_axes import default_axes
from fftconv._io.formats import InputError

Named = tuple[tuple[str, bool], ...] | None


def choose_axes(given: Sequence[int] | None, named: Named, image_shape: Sequence[int],
                kernel_shape: Sequence[int], kernel_name: str) -> tuple[tuple[int, ...] | None,
                                                                        str]:
    """``(axes, line)``: the ``axes=`` to convolve with (None: all) and why.

    Examples
    --------
    >>> named = (("c", False), ("y", True), ("x", True))
    >>> choose_axes(None, named, (2, 64, 64), (2, 5, 5), "psf.npy")
    ((1, 2), 'axes 1,2 (y, x); c is not space: one kernel per c')
    >>> choose_axes(None, None, (64, 64), (5, 5), "psf.npy")
    (None, 'axes 0,1 (all; the file names none)')
    """
    ndim = len(image_shape)
    if given is not None:
        axes = normalize_axes(tuple(given), ndim, len(kernel_shape))
        return tuple(given), f"axes {_listed(axes, named)} (--axes)"
    if len(kernel_shape) != ndim:
        return default_axes(named, ndim, len(kernel_shape))
    others = [i for i, (_, space) in enumerate(named or ()) if not space]
    if not others or len(others) == ndim:
        source = "the file names none" if named is None else _names(range(ndim), named)
        return None, f"axes {','.join(map(str, range(ndim)))} (all; {source})"
    for i in others:
        if kernel_shape[i] not in (1, image_shape[i]):
            raise InputError(f"kernel {kernel_name!r} is {kernel_shape[i]} long along "
                             f"{named[i][0]}, the input {image_shape[i]}: one kernel per "
                             f"{named[i][0]} needs {image_shape[i]} (or 1 for the same "
                             "kernel for all); or give --axes")
    space = tuple(i for i in range(ndim) if i not in others)
    how = ", ".join(f"one kernel per {named[i][0]}" if kernel_shape[i] > 1
                    else f"the same kernel for every {named[i][0]}" for i in others)
    listed = ", ".join(named[i][0] for i in others)
    verb = "is" if len(others) == 1 else "are"
    return space, f"axes {_listed(space, named)}; {listed} {verb} not space: {how}"


def _names(axes, named: Named) -> str:
    return ", ".join(named[i][0] for i in axes) if named else ""


def _listed(axes: Sequence[int], named: Named) -> str:
    numbers = ",".join(map(str, axes))
    return f"{numbers} ({_names(axes, named)})" if named else numbers
