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

Those buffers, like the per-kernel spectrum caches of :mod:`fftconv._tiling.dask`,
serve one computation.  Scheduler threads outlive it (Dask's thread pool, a
distributed worker), so whatever is kept here is dropped after
:data:`IDLE_SECONDS` without use — a 64-thread worker would otherwise hold 64
tiles' buffers for good after one convolution.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from fftconv._infra import forks as _forks
from fftconv._infra import once as _once

IDLE_SECONDS = 5.0


class Idle:
    """A keyed store whose values are dropped after :data:`IDLE_SECONDS` unused.

    A daemon timer sweeps it while it holds anything; at most ``limit`` values
    are kept (the least recently used go first).

    Examples
    --------
    >>> store = Idle(limit=2)
    >>> store.get("a", lambda: [1]) is store.get("a", lambda: [2])
    True
    >>> store.clear(); len(store)
    0
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._items: dict[Hashable, list] = {}  # key -> [value, last use]
        self._after_fork()
        _forks.renewed(self)

    def _after_fork(self) -> None:
        # A forked child inherits the lock as it was and the timer's record, not its thread.
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._running = _once.Running()  # the child has none of the threads making them

    def get(self, key: Hashable, make: Callable[[], Any],
            fits: Callable[[Any], bool] = lambda value: True) -> Any:
        """The value under ``key``, made (and kept) when missing or when ``fits`` refuses it.

        Threads asking while another makes it wait for that one (:mod:`fftconv._infra.once`).
        """
        def found():  # under the lock; a misfit goes before its replacement is made
            entry = self._items.pop(key, None)
            if entry is None or not fits(entry[0]):
                return _once.MISSING
            self._items[key] = entry  # re-inserted last: the dict is in LRU order
            entry[1] = time.monotonic()
            self._schedule()
            return entry[0]

        return _once.get(self._running, self._lock, key, found, make, self._keeper(key), fits)

    def _keeper(self, key: Hashable) -> Callable[[Any], None]:
        def keep(value: Any) -> None:  # under the lock
            self._items[key] = [value, time.monotonic()]
            while self.limit is not None and len(self._items) > self.limit:
                self._items.pop(next(iter(self._items)))
            self._schedule()
        return keep

    def _schedule(self, delay: float | None = None) -> None:
        """Start the sweep timer unless one is pending (lock held)."""
        if self._timer is not None:
            return
        self._timer = threading.Timer(IDLE_SECONDS if delay is None else delay, self._sweep)
        self._timer.daemon = True
        self._timer.start()

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (_, used) in self._items.items() if now - used >= IDLE_SECONDS]:
                del self._items[key]
            self._timer = None
            if self._items:  # next when the least recently used one falls idle
                oldest = min(used for _, used in self._items.values())
                self._schedule(max(oldest + IDLE_SECONDS - now, 0.01))

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_buffers = Idle()


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

    return _buffers.get(threading.get_ident(), make, fits)


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
    return _buffers.get((threading.get_ident(), "joined"), lambda: np.empty(shape, dtype),
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
