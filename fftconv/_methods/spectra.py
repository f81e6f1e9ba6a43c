"""Kernel spectra kept for reuse: by a Convolver (its own), or by repeated convolve calls.

The shared cache is keyed by the kernel's bytes (a BLAKE2 digest), its shape
and dtype, and the transform (backend, shape, axes, real); it is bounded in
entries (``spectrum_cache`` setting, 0 disables it) and in bytes, and never
holds a spectrum larger than a quarter of its byte budget.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable

import numpy as np

from fftconv._infra import forks as _forks
from fftconv._infra import once as _once

CACHE_BYTES = 128 * 2**20
HASH_LIMIT = 1 << 22  # kernels above this many elements are not hashed (not cached)


def kernel_digest(kernel: np.ndarray) -> str | None:
    if kernel.size > HASH_LIMIT:
        return None
    data = np.ascontiguousarray(kernel)
    return hashlib.blake2b(data.view(np.uint8).ravel(), digest_size=16).hexdigest()


def transform_key(transform) -> tuple:
    return (transform.backend.name, id(transform.backend), transform.shape, transform.axes,
            transform.real, transform.dtype.str)


class SpectrumCache:
    """An LRU map from (kernel, transform) to the kernel's spectrum."""

    def __init__(self, entries: int, max_bytes: int | None = CACHE_BYTES) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self._items: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()
        self._after_fork()
        _forks.renewed(self)

    def _after_fork(self) -> None:
        # A forked child inherits the lock as it was, and keys being made by threads it
        # does not have: waiting on either would block it for ever.
        self._lock = threading.Lock()
        self._running = _once.Running()

    def get(self, key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The spectrum under ``key``, computed once when missing.

        Threads asking while another computes it wait for that one
        (:mod:`fftconv._infra.once`); the spectrum is read-only, as they share it.
        """
        def found():  # under the lock
            spectrum = self._items.get(key)
            if spectrum is None:
                return _once.MISSING
            self._items.move_to_end(key)
            return spectrum

        return _once.get(self._running, self._lock, key, found, compute, self._keep(key))

    def _keep(self, key: tuple) -> Callable[[np.ndarray], None]:
        def keep(spectrum: np.ndarray) -> None:  # under the lock
            spectrum.flags.writeable = False  # shared: nobody may change it in place
            if self.entries <= 0 or (self.max_bytes and spectrum.nbytes * 4 > self.max_bytes):
                return
            self._items[key] = spectrum
            while len(self._items) > self.entries or (
                    self.max_bytes and sum(s.nbytes for s in self._items.values())
                    > self.max_bytes):
                self._items.popitem(last=False)
        return keep

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


SHARED = SpectrumCache(entries=8)


def spectrum_for(cache: SpectrumCache | None, transform, kernel: np.ndarray) -> np.ndarray:
    """The kernel's spectrum at ``transform``, from ``cache`` when possible."""
    if cache is None:
        return transform.forward(kernel)
    digest = kernel_digest(kernel)
    if digest is None:
        return transform.forward(kernel)
    key = (digest, kernel.shape, kernel.dtype.str, *transform_key(transform))
    return cache.get(key, lambda: transform.forward(kernel))
