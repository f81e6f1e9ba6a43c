"""Per-thread work buffers for the Dask path's tiles: one real array, one spectrum.

A Dask graph convolves tile after tile of one padded shape on a few scheduler
threads.  Fresh arrays for every tile's data, spectrum and inverse cost page
faults (at 2250², about a fifth of the tile's FFT time) and leave malloc's
arenas holding freed megabytes.  With a backend that transforms into given
arrays (``rfftn_into`` / ``irfftn_into``, see :mod:`fftconv._protocol`), each
thread keeps the two buffers of the last shape it convolved and reuses them:
about twice a tile's bytes per scheduler thread, held until the thread ends,
the next shape replaces them, or :func:`release` is called from that thread.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


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
    key = (tuple(real_shape), tuple(spectrum_shape), np.dtype(dtype).str)
    held = getattr(_local, "held", None)
    if held is None or held[0] != key:
        _local.held = None  # let the old pair go before the new one is allocated
        spectrum_dtype = np.result_type(dtype, np.complex64)
        _local.held = (key, np.empty(real_shape, dtype), np.empty(spectrum_shape,
                                                                  spectrum_dtype))
    return _local.held[1], _local.held[2]


def release() -> None:
    """Drop the calling thread's buffers."""
    _local.held = None
