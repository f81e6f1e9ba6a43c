"""Kernel spectra kept for reuse: by a Convolver (its own), or by repeated convolve calls.

The shared cache is keyed by the kernel's bytes (a BLAKE2 digest), its shape
and dtype, and the transform (backend, shape, axes, real); it is bounded in
entries (``spectrum_cache`` setting, 0 disables it) and in bytes, and never
holds a spectrum larger than a quarter of its byte budget.
"""

from __future__ import annotations

import hashlib

import numpy as np

from fftconv._infra.cache import Cache

CACHE_BYTES = 128 * 2**20
HASH_LIMIT = 1 << 22  # kernels above this many elements are not hashed (not cached)


def kernel_digest(kernel: np.ndarray) -> str | None:
    """A digest of the kernel's values, or None past the hashing limit.

    One value broadcast over any shape (every stride 0: a box built without its
    array) is digested by that value, at no cost; callers key on the shape too.
    """
    if kernel.size and not any(kernel.strides):
        value = np.ascontiguousarray(kernel.flat[0]).view(np.uint8)
        return "one value " + hashlib.blake2b(value, digest_size=16).hexdigest()
    if kernel.size > HASH_LIMIT:
        return None
    data = np.ascontiguousarray(kernel)
    return hashlib.blake2b(data.view(np.uint8).ravel(), digest_size=16).hexdigest()


def transform_key(transform) -> tuple:
    return (transform.backend.name, id(transform.backend), transform.shape, transform.axes,
            transform.real, transform.dtype.str)


def _nbytes(spectrum: np.ndarray) -> int:
    return spectrum.nbytes


class SpectrumCache(Cache):
    """A :class:`~fftconv._infra.cache.Cache` of kernel spectra, by (kernel, transform).

    Bounded in entries and in bytes; a spectrum over a quarter of the byte
    budget is computed but not kept.  Spectra are read-only: threads share them.
    """

    def __init__(self, entries: int, max_bytes: int | None = CACHE_BYTES,
                 name: str = "kernel spectra") -> None:
        super().__init__(name, entries=entries, max_bytes=max_bytes, sizeof=_nbytes,
                         max_item_bytes=None if max_bytes is None else max_bytes // 4)


SHARED = SpectrumCache(entries=8, name="shared kernel spectra")


def spectrum_for(cache: SpectrumCache | None, transform, kernel: np.ndarray) -> np.ndarray:
    """The kernel's spectrum at ``transform``, from ``cache`` when possible."""
    if cache is None:
        return transform.forward(kernel)
    digest = kernel_digest(kernel)
    if digest is None:
        return transform.forward(kernel)
    key = (digest, kernel.shape, kernel.dtype.str, *transform_key(transform))

    def forward() -> np.ndarray:
        spectrum = transform.forward(kernel)
        spectrum.flags.writeable = False  # shared: nobody may change it in place
        return spectrum

    return cache.get_or_make(key, forward)
