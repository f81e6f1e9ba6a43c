"""HDF5 datasets in (h5py): ``file.h5/group/dataset``, read a chunk per task, by path.

An open ``h5py`` dataset cannot be pickled to worker processes, and a file
handle shared by threads serialises on HDF5's global lock anyway: each read
opens the file, reads its region and closes it.  Chunked datasets lend their
chunks to dask's, as zarr stores do.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from fftconv._io.formats import HDF5, InputError


@dataclasses.dataclass(frozen=True)
class H5Dataset:
    """One dataset of an HDF5 file, read by path: a dask source."""

    path: str
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...] | None = None
    modified: int = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as file:
            return np.asarray(file[self.name][index])


def split(path: Path) -> tuple[Path, str]:
    """``file.h5/group/name`` as the file and the dataset's name inside it."""
    parts = path.parts
    for i, part in enumerate(parts):
        if part.lower().endswith(HDF5):
            return Path(*parts[: i + 1]), "/".join(parts[i + 1:])
    raise InputError(f"{str(path)!r} names no HDF5 file")


def open_hdf5(path: Path, role: str = "input") -> H5Dataset:
    import h5py

    file, name = split(path)
    if not file.is_file():
        raise InputError(f"{role} {str(file)!r} does not exist")
    with h5py.File(file, "r") as opened:
        node = opened.get(name)
        if not isinstance(node, h5py.Dataset):
            found: list[str] = []
            opened.visititems(lambda key, item: found.append(key)
                              if isinstance(item, h5py.Dataset) else None)
            raise InputError(f"{role} {str(path)!r}: {name!r} is not a dataset of "
                             f"{str(file)!r}; its datasets: {found}")
        return H5Dataset(str(file), name, tuple(node.shape), np.dtype(node.dtype),
                         tuple(node.chunks) if node.chunks else None,
                         os.stat(file).st_mtime_ns)
