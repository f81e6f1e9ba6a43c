"""The image formats fftconv reads and writes, told from a path, and the error for bad input."""

from __future__ import annotations

import os
from pathlib import Path

FORMATS = (".zarr", ".npy", ".tif", ".tiff")


class InputError(ValueError):
    """An input, kernel or output that cannot be used (the command line's exit status 2)."""


def file_format(path: Path, role: str) -> str:
    """The format ``path`` names: its extension, or an array inside a ``.zarr`` group."""
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return ".tif" if suffix == ".tiff" else suffix
    if any(part.lower().endswith(".zarr") for part in path.parts[:-1]):
        return ".zarr"  # an array inside a zarr group: image.zarr/0
    raise InputError(f"{role} {str(path)!r}: unknown format {suffix or '(none)'!r}; "
                     f"use one of {', '.join(FORMATS)}, or name an array inside a "
                     ".zarr group (image.zarr/name)")


def output_format(path: str | os.PathLike) -> str:
    """The format :func:`write_image` writes at ``path``: ``.zarr``, ``.npy`` or ``.tif``."""
    return file_format(Path(path), "output")
