"""The image formats fftconv reads and writes, told from a path, and the error for bad input."""

from __future__ import annotations

import os
from pathlib import Path

FORMATS = (".zarr", ".npy", ".tif", ".tiff", ".fits", ".fit", ".fts")
# Another name for the same format: the one the code dispatches on.
SYNONYMS = {".tiff": ".tif", ".fit": ".fits", ".fts": ".fits"}
# Read only: an HDF5 dataset, named as file.h5/group/dataset.
HDF5 = (".h5", ".hdf5", ".he5")


class InputError(ValueError):
    """An input, kernel or output that cannot be used (the command line's exit status 2)."""


def file_format(path: Path, role: str) -> str:
    """The format ``path`` names: its extension, or an array inside a ``.zarr`` group."""
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return SYNONYMS.get(suffix, suffix)
    if any(part.lower().endswith(".zarr") for part in path.parts[:-1]):
        return ".zarr"  # an array inside a zarr group: image.zarr/0
    if any(part.lower().endswith(HDF5) for part in path.parts[:-1]):
        if role == "output":
            raise InputError(f"output {str(path)!r}: HDF5 is read, not written; write "
                             f"{', '.join(FORMATS[:3])} or .fits")
        return ".h5"  # a dataset inside an HDF5 file: file.h5/group/name
    if suffix in HDF5:
        raise InputError(f"{role} {str(path)!r}: name the dataset inside the HDF5 file, "
                         f"as {path!s}/group/dataset")
    raise InputError(f"{role} {str(path)!r}: unknown format {suffix or '(none)'!r}; "
                     f"use one of {', '.join(FORMATS)}, or name an array inside a "
                     ".zarr group (image.zarr/name) or a dataset inside an HDF5 file "
                     "(file.h5/name)")


def output_format(path: str | os.PathLike) -> str:
    """The format :func:`write_image` writes at ``path``: ``.zarr``, ``.npy``, ``.tif`` or
    ``.fits``."""
    return file_format(Path(path), "output")
