"""The scipy drop-ins against scipy itself, on the same data in the same run.

``fftconv.ndimage.convolve`` against ``scipy.ndimage.convolve`` (both ``reflect``)
and ``fftconv.signal.fftconvolve`` against ``scipy.signal.fftconvolve`` (``full``
and ``same``), float32 4096² images ⊛ 31² and 127² kernels.  Medians of 3 calls
(scipy.ndimage: of 1, it takes minutes at 127²); ratio = scipy / fftconv (> 1:
fftconv faster), and the largest difference between the two relative to the
result's largest value.

Usage: ``python -m benchmarks.dropins [--quick]``; writes
``benchmarks/results/<machine>-<date>-dropins.md``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.signal

import fftconv
from benchmarks.run import write_report
from fftconv import ndimage, signal
from fftconv._ops.calibrate import median_time


def _row(name: str, n: int, k: int, ours_fn, theirs_fn, theirs_repeats: int) -> str:
    ours = median_time(ours_fn)
    theirs = median_time(theirs_fn, theirs_repeats)
    a, b = ours_fn(), theirs_fn()
    diff = float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())
    return (f"| {name} | {n}² ⊛ {k}² | {ours * 1e3:.0f} | {theirs * 1e3:.0f} | "
            f"{theirs / ours:.2f}× | {diff:.1e} |")


def rows(n: int, kernels: list[int]) -> list[str]:
    rng = np.random.default_rng(0)
    image = rng.random((n, n), dtype=np.float32)
    found = []
    for k in kernels:
        w = rng.random((k, k), dtype=np.float32)
        found.append(_row("ndimage.convolve", n, k, lambda w=w: ndimage.convolve(image, w),
                          lambda w=w: scipy.ndimage.convolve(image, w), 1))
        for mode in ("full", "same"):
            found.append(_row(f"signal.fftconvolve {mode}", n, k,
                              lambda w=w, mode=mode: signal.fftconvolve(image, w, mode),
                              lambda w=w, mode=mode: scipy.signal.fftconvolve(image, w, mode),
                              3))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", default=None, help="folder for the report")
    args = parser.parse_args(argv)
    table = rows(512, [7, 31]) if args.quick else rows(4096, [31, 127])
    meta = (f"{platform.node()}, {datetime.date.today().isoformat()}, threads "
            f"{fftconv.config.resolve().threads()}, scipy {scipy.__version__}")
    text = "\n".join([
        f"# scipy drop-ins — {meta}", "",
        "float32. Medians of 3 calls (scipy.ndimage: 1). Ratio = scipy / fftconv "
        "(> 1: fftconv faster); difference relative to the largest value.", "",
        "| function | case | fftconv ms | scipy ms | ratio | difference |",
        "|---|---|---|---|---|---|", *table])
    if args.results:
        write_report(text, "dropins", args.quick, Path(args.results))
    else:
        write_report(text, "dropins", args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
