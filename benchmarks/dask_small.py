"""Dask arrays, small and mid-sized kernels: the case dask-image serves.

Usage: ``python -m benchmarks.dask_small [--quick] [--rounds N] [--results DIR]``;
writes ``<DIR>/<machine>-<date>-dask-small.md`` (``DIR``: ``benchmarks/results``).

An 8192² float32 image (256 MiB) in 1024² chunks, in memory, is convolved
('same', reflecting boundary) on dask's threaded scheduler and stored into an
in-memory array, so the table times the computation and its tiling, not disk.
The contenders:

* ``fftconv`` — :func:`fftconv.convolve` of the dask array;
* ``map_overlap+cv2`` — :func:`dask.array.map_overlap` with ``cv2.filter2D`` per
  block (OpenCV's own DFT path for kernels of 11² and more);
* ``dask-image`` — ``dask_image.ndfilters.convolve`` (``gaussian_filter`` for a
  Gaussian), left out for kernels of more than 17² taps: scipy.ndimage's direct
  loop would take minutes;
* ``copy`` — an identity ``map_blocks``, stored the same way: the tiling and
  storing alone.

Each round runs the contenders of a case one after another; the table gives the
medians and the ratio peer / fftconv (> 1: fftconv faster).  Before timing,
every contender's result is checked against fftconv's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

import fftconv
from benchmarks.lines import _gaussian, arguments, medians, report, row

SIZE, CHUNK = 8192, 1024
# dask-image runs scipy.ndimage's direct loop: past this many taps it is left out.
DASK_IMAGE_TAPS = 17 * 17


def kernels(rng) -> list[tuple[str, np.ndarray, float | None]]:
    """(name, kernel, Gaussian sigma or None) per case."""
    g = _gaussian(2.0)
    return [("random 5²", rng.random((5, 5), dtype=np.float32), None),
            ("Gaussian σ=2 (17²)", np.outer(g, g).astype(np.float32), 2.0),
            ("random 31²", rng.random((31, 31), dtype=np.float32), None)]


def _lazies(image, kernel: np.ndarray, sigma: float | None) -> dict[str, Callable[[], object]]:
    """Each contender's lazy result, built anew on each call (graph building counts)."""
    import cv2

    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    depth = tuple(k // 2 for k in kernel.shape)
    lazies = {
        "fftconv": lambda: fftconv.convolve(image, kernel, boundary="reflect"),
        "map_overlap+cv2": lambda: image.map_overlap(
            lambda b: cv2.filter2D(b, -1, flipped, borderType=cv2.BORDER_REFLECT),
            depth=depth, boundary="reflect", dtype=image.dtype),
    }
    if kernel.size <= DASK_IMAGE_TAPS:
        from dask_image import ndfilters

        lazies["dask-image"] = (
            (lambda: ndfilters.gaussian_filter(image, sigma, mode="reflect", truncate=4.0))
            if sigma is not None else
            (lambda: ndfilters.convolve(image, kernel, mode="reflect")))
    lazies["copy"] = lambda: image.map_blocks(np.copy, dtype=image.dtype)
    return lazies


def _agreement(lazies: dict, out: np.ndarray) -> float:
    """The largest relative difference of any contender's result from fftconv's."""
    import dask.array as da

    reference = lazies["fftconv"]().compute()
    scale = float(np.abs(reference).max())
    worst = 0.0
    for name, lazy in lazies.items():
        if name in ("fftconv", "copy"):
            continue
        da.store(lazy(), out, lock=False)
        worst = max(worst, float(np.abs(out - reference).max()) / scale)
    return worst


def rows(size: int, chunk: int, rounds: int, rng) -> tuple[list[str], list[str]]:
    import dask.array as da

    image = da.from_array(rng.random((size, size), dtype=np.float32), chunks=chunk)
    out = np.empty(image.shape, np.float32)
    table, notes = [], []
    for name, kernel, sigma in kernels(rng):
        lazies = _lazies(image, kernel, sigma)
        notes.append(f"{name}: results agree with fftconv's within "
                     f"{_agreement(lazies, out):.1e} (relative to the largest value)")
        calls = {contender: (lambda lazy=lazy: da.store(lazy(), out, lock=False))
                 for contender, lazy in lazies.items()}
        table.append(row(name, medians(calls, rounds)))
    return table, notes


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    rng = np.random.default_rng(0)
    size, chunk, rounds = (1024, 256, 2) if args.quick else (SIZE, CHUNK, args.rounds)
    table, notes = rows(size, chunk, rounds, rng)
    report(args, "dask-small", "Dask arrays, small and mid-sized kernels",
           f"{size}² float32 in {chunk}² chunks, in memory, 'same', reflecting boundary, "
           f"stored into an in-memory array on dask's threaded scheduler. Medians of "
           f"{rounds} interleaved rounds, ms. Ratio = peer / fftconv (> 1: fftconv "
           f"faster).\n\n" + "  \n".join(notes),
           ("case", "fftconv ms", "peers ms (ratio)"), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
