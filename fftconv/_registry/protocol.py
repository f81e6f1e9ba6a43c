"""The contract between fftconv and an FFT backend plugin (version 1).

A backend is an object registered in the ``fftconv.backends`` entry-point
group.  The entry point may name a class or a zero-argument factory; fftconv
calls it once, on first use, to get the instance.  Before that, two plain
class attributes are read without importing the FFT library:

``requires``
    module names the backend needs; if one is not importable the backend is
    reported as *not installed* (with ``install_hint``), never imported.
``install_hint``
    the command that installs what is missing.

The instance provides everything in :class:`FFTBackend`.  Transforms take
``s`` (the transform lengths, one per axis in ``axes``; shorter inputs are
zero-padded at the end) and ``workers`` (threads; a backend without threads
ignores it).  They must not modify their input, and must keep the precision:
float32 in, complex64 out; float64 in, complex128 out.

Four methods are optional, in two pairs that a backend declares in its
:class:`Capabilities` (``real_into``, ``complex_into``); without them fftconv
allocates fresh arrays through the required ones:

``rfftn_into(x, out, axes, workers)``
    the real transform of ``x`` (already at the transform's shape) written
    into the complex array ``out``; ``x`` is left as it was.
``irfftn_into(x, out, axes, workers)``
    the inverse of ``rfftn_into``: the real result, at ``out``'s shape,
    written into ``out``; ``x`` may be overwritten.
``fftn_into(x, out, axes, workers)`` and ``ifftn_into(x, out, axes, workers)``
    the complex pair (the inverse normalised by ``1/n`` of its axes), written
    into ``out``, which may be ``x`` itself: in place.

A declared pair whose methods are missing makes the backend non-conforming
(reported as broken).

``x`` and ``out`` may be views of any strides (the Dask path hands slices of
its buffers); :func:`fftconv.testing.check_backend` checks all four.

They let the Dask path convolve tile after tile in the same buffers per
thread (no allocation, no page faults, nothing left for malloc to hold).  With
all four, a tile of two or more transformed axes is transformed a strip of
rows at a time, so that no buffer of the whole tile is needed (see
:func:`fftconv._tiling.blocks.convolve_by_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

CONTRACT_VERSION = 1

REQUIRED_METHODS = ("rfftn", "irfftn", "fftn", "ifftn", "next_fast_len")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do natively.

    Attributes
    ----------
    native_dtypes
        Real and complex dtypes transformed without conversion.
    threads
        Whether ``workers`` is honoured.
    real_into
        Whether ``rfftn_into`` and ``irfftn_into`` are provided.
    complex_into
        Whether ``fftn_into`` and ``ifftn_into`` are provided (in place too).
    """

    native_dtypes: frozenset[np.dtype] = field(
        default_factory=lambda: frozenset(
            np.dtype(t) for t in ("float32", "float64", "complex64", "complex128")
        )
    )
    threads: bool = False
    real_into: bool = False
    complex_into: bool = False

    def declared_methods(self) -> tuple[str, ...]:
        """The optional methods these capabilities promise."""
        return (("rfftn_into", "irfftn_into") if self.real_into else ()) + (
            ("fftn_into", "ifftn_into") if self.complex_into else ())


@runtime_checkable
class FFTBackend(Protocol):
    """What fftconv calls on a backend instance."""

    name: str
    contract_version: int
    version: str
    capabilities: Capabilities
    priority: int

    def rfftn(self, x: np.ndarray, s: tuple[int, ...], axes: tuple[int, ...],
              workers: int) -> np.ndarray: ...

    def irfftn(self, x: np.ndarray, s: tuple[int, ...], axes: tuple[int, ...],
               workers: int) -> np.ndarray: ...

    def fftn(self, x: np.ndarray, s: tuple[int, ...], axes: tuple[int, ...],
             workers: int) -> np.ndarray: ...

    def ifftn(self, x: np.ndarray, s: tuple[int, ...], axes: tuple[int, ...],
              workers: int) -> np.ndarray: ...

    def next_fast_len(self, n: int, real: bool) -> int: ...
