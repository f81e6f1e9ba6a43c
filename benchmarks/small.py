"""Many small images, one kernel: what a call costs when the arithmetic is cheap.

Usage: ``python -m benchmarks.small [--quick] [--results DIR]``; writes
``<DIR>/<machine>-<date>-small.md`` (``DIR``: ``benchmarks/results``).

The case of ML patches and video frames.  A :class:`fftconv.Convolver` plans
once per image shape; :func:`fftconv.convolve` keeps its routes too, but reads
the settings and validates its arguments anew on every call.  Every contender computes the same
'same' convolution with a zero boundary, float32, odd kernels (ndimage centres
even ones differently).  Each round times a loop of calls per contender, one
contender after another; the table gives the median µs per call and the ratio
peer / Convolver (> 1: the Convolver faster).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

import fftconv
from benchmarks.lines import arguments, medians, report, row

CASES = [(32, 3), (64, 3), (64, 7), (128, 5), (256, 5), (256, 15)]


def _gaussian(k: int) -> np.ndarray:
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-0.5 * (t / (k / 6)) ** 2)
    return (np.outer(g, g) / g.sum() ** 2).astype(np.float32)


def _calls(image: np.ndarray, kernel: np.ndarray) -> dict[str, Callable[[], object]]:
    import cv2
    import scipy.ndimage

    blur = fftconv.Convolver(kernel)
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    return {"Convolver": lambda: blur(image),
            "convolve": lambda: fftconv.convolve(image, kernel),
            "ndimage.convolve": lambda: scipy.ndimage.convolve(image, kernel, mode="constant"),
            "cv2.filter2D": lambda: cv2.filter2D(image, -1, flipped,
                                                 borderType=cv2.BORDER_CONSTANT)}


def rows(cases, rounds: int, loops: int, rng) -> list[str]:
    found = []
    for n, k in cases:
        image = rng.random((n, n), dtype=np.float32)
        for name, kernel in (("random", rng.random((k, k), dtype=np.float32)),
                             ("Gaussian", _gaussian(k))):
            calls = _calls(image, kernel)
            for call in calls.values():
                call()  # the Convolver's first call plans; the others warm up alike
            found.append(row(f"{n}² ⊛ {k}² {name}", medians(calls, rounds, loops),
                             ours="Convolver", unit=1e6))
    return found


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    rng = np.random.default_rng(0)
    rounds, loops = (3, 5) if args.quick else (args.rounds, 200)
    table = rows(CASES[:2] if args.quick else CASES, rounds, loops, rng)
    report(args, "small", "Many small images",
           f"float32, 'same', zero boundary. Medians of {rounds} interleaved rounds of {loops} "
           "calls, µs per call. Ratio = peer / Convolver (> 1: the Convolver faster).",
           ("case", "Convolver µs", "others µs (ratio)"), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
