"""``.npy`` and TIFF outputs written through a memory map of a temporary file."""

from __future__ import annotations

import dataclasses
import errno
import os

import numpy as np

from fftconv._infra.cache import memoized


def on_a_grid(array):
    """``array`` with chunks that a zarr chunk grid can hold: equal, but for each axis's last.

    A zarr chunk is written whole: a dask block covering part of one reads it,
    changes its part and writes it back.  Two blocks sharing a zarr chunk (a
    ``full`` convolution's blocks end ``..., 36, 28, 8`` on a grid of 36) then
    race on threads, and one block's values are lost.  Irregular blocks are
    rechunked to the grid of the largest; regular ones are left alone.
    """
    def regular(sizes) -> bool:
        return all(n == sizes[0] for n in sizes[:-1]) and sizes[-1] <= sizes[0]

    if all(regular(c) for c in array.chunks):
        return array
    return array.rechunk(array.chunksize)


def created(mapped: np.memmap) -> MappedFile:
    """The new file ``mapped`` maps, its header on disk, as a target that maps it per write.

    The file's blocks are allocated now: a sparse file's pages get their blocks when
    first written through the map, and on a full disk that write is a SIGBUS that
    kills the process without a word.  Allocated up front, a full disk is an OSError
    here, before anything is computed.
    """
    mapped.flush()
    allocate(str(mapped.filename), int(mapped.offset) + mapped.nbytes)
    return MappedFile.of(mapped)


def allocate(path: str, size: int) -> None:
    """Give the file at ``path`` its blocks up to ``size`` bytes, or raise OSError (ENOSPC).

    Where the file system cannot preallocate, nothing is done.
    """
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return
        raise OSError(err.errno, f"no room for the output ({size} bytes): {err.strerror}",
                      path) from None
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True)
class MappedFile:
    """An array stored raw at ``offset`` in the file at ``path``: a source and a target.

    Each read or write maps the file in the process that makes it.  A
    ``np.memmap`` is pickled to worker processes (the ``processes`` scheduler,
    dask.distributed) as a copy of its data: as a ``da.store`` target its
    writes were lost (a ``.npy`` output came out all zeros), and as a source
    every task carried the whole image (a 64 MiB ``.npy`` took 37 s at
    1.3 GiB, against 0.7 s on threads).
    """

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype
    order: str = "C"
    modified: int = 0  # the file's mtime when opened: part of the dask token

    @classmethod
    def of(cls, mapped: np.memmap) -> MappedFile:
        """The array ``mapped`` maps, by path: reads and writes map it again."""
        order = "F" if mapped.flags.f_contiguous and not mapped.flags.c_contiguous else "C"
        path = str(mapped.filename)
        return cls(path, int(mapped.offset), mapped.shape, mapped.dtype, order,
                   os.stat(path).st_mtime_ns)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _map(self, mode: str) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=mode, offset=self.offset,
                         shape=self.shape, order=self.order)

    def __getitem__(self, index) -> np.ndarray:
        return _reading(self)[index]  # a view, as a memmap source gave

    def __setitem__(self, index, value) -> None:
        # A map per write: one kept open would hold every written page in RSS to the end
        # (a .npy output of 1 GiB peaked at 1.3 GiB that way).
        self._map("r+")[index] = value


@memoized("mapped files", entries=8)
def _reading(source: MappedFile) -> np.memmap:
    """``source`` mapped for reading, once per process.

    Mapping it again for each read (and copying out) took twice as long:
    22 ms against 11.5 ms for a 2048² float32 region of a 16384² ``.npy``.
    The pages it reads stay in RSS while mapped, but they are the file's page
    cache: the kernel drops clean pages under pressure, mapped or not.
    """
    return source._map("r")
