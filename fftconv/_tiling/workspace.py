"""Memory the Dask path keeps between tiles, and gives back once the tiles stop coming.

A Dask graph convolves tile after tile of one padded shape on a few scheduler
threads.  Fresh arrays for every tile's data, spectrum and inverse cost page
faults (at 2250², about a fifth of the tile's FFT time) and leave malloc's
arenas holding freed megabytes.  With a backend that transforms into given
arrays (``rfftn_into`` / ``irfftn_into``, see :mod:`fftconv._registry.protocol`), each
thread keeps the two buffers of the last shape it convolved and reuses them:
the spectrum, and the padded tile or (when the backend also runs its complex
passes in place) a strip of its rows — one to two tiles' bytes per scheduler
thread.

Those buffers, like the per-kernel spectrum caches of :mod:`fftconv._tiling.tiled`,
serve one computation.  Scheduler threads outlive it (Dask's thread pool, a
distributed worker), so whatever is kept here is dropped after
:data:`IDLE_SECONDS` without use — a 64-thread worker would otherwise hold 64
tiles' buffers for good after one convolution.
"""

from __future__ import annotations

import threading

import numpy as np

from fftconv._infra.cache import Cache

IDLE_SECONDS = 5.0


_buffers = Cache("Dask tile buffers", idle_seconds=IDLE_SECONDS)


def buffers(real_shape: tuple[int, ...], spectrum_shape: tuple[int, ...],
            dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """This thread's real buffer (``dtype``) and spectrum buffer, allocated on first use.

    Examples
    --------
    >>> import numpy as np
    >>> real, spectrum = buffers((8, 8), (8, 5), np.dtype("float32"))
    >>> spectrum.dtype, buffers((8, 8), (8, 5), np.dtype("float32"))[0] is real
    (dtype('complex64'), True)
    >>> release()
    """
    real_shape, spectrum_shape = tuple(real_shape), tuple(spectrum_shape)
    dtype = np.dtype(dtype)
    spectrum_dtype = np.result_type(dtype, np.complex64)

    def make():
        return _empty_aligned(real_shape, dtype), _empty_aligned(spectrum_shape, spectrum_dtype)

    def fits(pair):
        return (pair[0].shape == real_shape and pair[0].dtype == dtype
                and pair[1].shape == spectrum_shape)

    return _buffers.get_or_make(threading.get_ident(), make, fits)


def joined(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """This thread's buffer to join a tile's pieces into when no FFT runs in place.

    Examples
    --------
    >>> import numpy as np
    >>> tile = joined((8, 8), np.dtype("float32"))
    >>> joined((8, 8), np.dtype("float32")) is tile, joined((4, 8), np.dtype("float32")) is tile
    (True, False)
    >>> release()
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    return _buffers.get_or_make((threading.get_ident(), "joined"), lambda: np.empty(shape, dtype),
                        lambda tile: tile.shape == shape and tile.dtype == dtype)


def _empty_aligned(shape: tuple[int, ...], dtype: np.dtype, align: int = 64) -> np.ndarray:
    """An empty C-contiguous array whose data starts on an ``align``-byte boundary.

    FFTW runs its SIMD plans only on arrays aligned like those it planned on;
    malloc's large blocks are 16-byte aligned.
    """
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def release() -> None:
    """Drop the calling thread's buffers."""
    _buffers.pop(threading.get_ident())
    _buffers.pop((threading.get_ident(), "joined"))
