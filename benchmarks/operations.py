"""Benchmarks of the operations (SPEC §3) against their peers.

Usage: ``python -m benchmarks.operations [--quick]``; writes
``benchmarks/results/<machine>-<date>-operations.md``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time

import numpy as np

import fftconv
from benchmarks.run import write_report
from fftconv._ops.calibrate import median_time


def template_rows(n, t, rng):
    import cv2
    import skimage.feature

    image = rng.random((n, n), dtype=np.float32)
    template = image[n // 3: n // 3 + t, n // 2: n // 2 + t].copy()
    ours = median_time(lambda: fftconv.match_template(image, template))
    sk = median_time(lambda: skimage.feature.match_template(image, template), 1)
    cv = median_time(lambda: cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED))
    a = fftconv.match_template(image, template)
    b = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
    return [f"| match_template {n}² ⊛ {t}² | {ours * 1e3:.0f} | skimage {sk * 1e3:.0f} "
            f"({sk / ours:.2f}×) ; cv2 TM_CCOEFF_NORMED {cv * 1e3:.0f} ({cv / ours:.2f}×) | "
            f"max diff vs cv2 {np.abs(a - b).max():.1e} |"]


def window_rows(n, sizes, rng):
    import scipy.ndimage

    image = rng.random((n, n), dtype=np.float32)
    rows = []
    for size in sizes:
        ours = median_time(lambda size=size: fftconv.window_sum(image, size))
        peer = median_time(lambda size=size: scipy.ndimage.uniform_filter(
            image, size, mode="constant"))
        rows.append(f"| window_sum {n}², size {size} | {ours * 1e3:.0f} | uniform_filter × size "
                    f"{peer * 1e3:.0f} ({peer / ours:.2f}×) | |")
    return rows


def estimate_rows(n, ks, rng):
    image = rng.random((n, n))
    rows = []
    for k in ks:
        kernel = rng.random((k, k))
        out = fftconv.convolve(image, kernel, boundary="reflect")
        start = time.perf_counter()
        found, fit = fftconv.estimate_kernel(image, out, (k, k), boundary="reflect",
                                             full_output=True)
        took = time.perf_counter() - start
        err = np.abs(found - kernel).max() / np.abs(kernel).max()
        rows.append(f"| estimate_kernel {n}², {k}² | {took * 1e3:.0f} | "
                    f"{fit.iterations} CGLS iterations | relative kernel error {err:.1e}, "
                    f"residual {fit.relative_residual:.1e} |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.quick:
        rows = (template_rows(256, 31, rng) + window_rows(256, [3, 31], rng)
                + estimate_rows(128, [5], rng))
    else:
        rows = (template_rows(4096, 255, rng) + template_rows(2048, 63, rng)
                + window_rows(4096, [3, 11, 31, 101, 301, 1001], rng)
                + estimate_rows(2048, [15, 31], rng))
    meta = f"{platform.node()}, {datetime.date.today().isoformat()}, " \
           f"threads {fftconv.config.resolve().threads()}"
    text = "\n".join([f"# Operations — {meta}", "", "float32 images (estimate_kernel: "
                      "float64). Medians of 3 calls (skimage: 1). Ratio = peer / fftconv "
                      "(> 1: fftconv faster).", "",
                      "| case | fftconv ms | peers ms | notes |", "|---|---|---|---|", *rows])
    write_report(text, "operations", args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
