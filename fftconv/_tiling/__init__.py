"""Dask halo tiling: the interface every lazy operation uses.

A dask array in, a lazy dask array out (SPEC §2).  Every output block reads
the region of the boundary-extended image it needs, its own extent plus the
kernel's reach, from the input chunks (:mod:`.pieces`); the graph
(:mod:`.graph`) gives each block one task that convolves it in memory
(:mod:`.blocks`) with the plan the in-memory engine would choose.

The names below are what the operations (``convolve``, the ``Convolver``,
``window_sum``, ``match_template``, the lazy adjoints and the lazy kernel
estimate) build on.  They load on first use: importing this package imports
no dask, so ``import fftconv`` stays light.

Graph building
    :func:`convolve` (the lazy ``fftconv.convolve``), :func:`window_sums`,
    :func:`apply_convolver`; :func:`frozen_settings` (settings re-applied in
    every task), :func:`converts_in_blocks`, :func:`check_known_chunks`.
Chunks
    :func:`merged` (small chunks merged into blocks), :func:`output_chunks`,
    :func:`whole_short_axes`, :func:`chunk_spans`.
A block's region
    :func:`plans_of`, :func:`axis_pieces`, :class:`Repeat` (where each piece
    comes from), :func:`block_pieces` (the pieces as graph keys),
    :func:`reread` (a second read of a store's chunks for the halos).
Inside a task
    :func:`leaves`, :func:`join_starts` (a block's pieces), :func:`worker_spectra`
    (this worker's kernel spectra), :func:`transforms_by_rows` and
    :func:`forward_by_rows` (a tile's spectrum a strip of rows at a time).
"""

from __future__ import annotations

import importlib

_WHERE = {
    "convolve": "tiled", "window_sums": "tiled", "apply_convolver": "tiled",
    "frozen_settings": "tiled", "converts_in_blocks": "tiled",
    "check_known_chunks": "chunks", "merged": "chunks", "output_chunks": "chunks",
    "whole_short_axes": "chunks",
    "chunk_spans": "pieces", "plans_of": "pieces", "axis_pieces": "pieces", "Repeat": "pieces",
    "block_pieces": "graph", "reread": "graph",
    "leaves": "join", "join_starts": "join",
    "worker_spectra": "blocks", "transforms_by_rows": "blocks", "forward_by_rows": "blocks",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
