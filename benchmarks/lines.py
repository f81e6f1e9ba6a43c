"""Kernels along a line against their peers: 1-D signals, and separable volume blurs.

Usage: ``python -m benchmarks.lines [--quick] [--results DIR]``; writes
``<DIR>/<machine>-<date>-lines.md`` (``DIR``: ``benchmarks/results``).

Every contender computes the same 'same' convolution with a zero boundary (the
volume's Gaussian: a reflecting one), float32.  The contenders of one case run
one after another in each round, so a busy moment costs all of them alike; the
table gives each one's median over the rounds and the ratio peer / fftconv
(> 1: fftconv faster).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import fftconv
from benchmarks.run import RESULTS, write_report

SIGNALS = [(10**4, 15), (10**5, 31), (10**5, 301), (10**6, 5), (10**6, 101), (10**6, 501),
           (10**7, 31), (10**7, 501)]
VOLUMES = [((64, 256, 256), 1.0), ((64, 256, 256), 2.0), ((64, 256, 256), 4.0)]
# np.convolve and ndimage.convolve1d take taps × samples: past this they are left out.
DIRECT_WORK = 2 * 10**8


def medians(calls: dict[str, Callable[[], object]], rounds: int,
            loops: int = 1) -> dict[str, float]:
    """Each call's median seconds over ``rounds`` interleaved rounds of ``loops`` calls."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(loops):
                call()
            times[name].append((time.perf_counter() - start) / loops)
    return {name: statistics.median(t) for name, t in times.items()}


def row(case: str, times: dict[str, float], ours: str = "fftconv", unit: float = 1e3) -> str:
    """A table row: ``ours``'s time, then each peer's and its ratio peer / ours."""
    mine = times.pop(ours)
    peers = " ; ".join(f"{name} {t * unit:.2f} ({t / mine:.2f}×)" for name, t in times.items())
    return f"| {case} | {mine * unit:.2f} | {peers} |"


def arguments(doc: str, argv=None) -> argparse.Namespace:
    """The options of an interleaved benchmark: ``--quick``, ``--rounds``, ``--results``."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def report(args: argparse.Namespace, kind: str, title: str, note: str,
           columns: tuple[str, ...], rows: list[str]) -> None:
    """Write and print a report: its title with this machine, date and threads, a note,
    and the table."""
    heading = (f"# {title} — {platform.node()}, {datetime.date.today().isoformat()}, "
               f"threads {fftconv.config.resolve().threads()}")
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows]
    write_report("\n".join([heading, "", note, "", *table]), kind, args.quick, args.results)


def _signal_calls(x: np.ndarray, kernel: np.ndarray) -> dict[str, Callable[[], object]]:
    import scipy.ndimage
    import scipy.signal

    calls = {"fftconv": lambda: fftconv.convolve(x, kernel),
             "oaconvolve": lambda: scipy.signal.oaconvolve(x, kernel, "same"),
             "fftconvolve": lambda: scipy.signal.fftconvolve(x, kernel, "same")}
    if x.size * kernel.size <= DIRECT_WORK:
        calls["np.convolve"] = lambda: np.convolve(x, kernel, "same")
        calls["convolve1d"] = lambda: scipy.ndimage.convolve1d(x, kernel, mode="constant")
    return calls


def signal_rows(cases, rounds: int, rng) -> list[str]:
    rows = []
    for n, k in cases:
        x = rng.random(n, dtype=np.float32)
        kernel = rng.random(k, dtype=np.float32)
        method = fftconv.plan(x, kernel).method
        rows.append(row(f"signal {n:.0e} ⊛ {k} taps ({method})",
                        medians(_signal_calls(x, kernel), rounds)))
    return rows


def _gaussian(sigma: float) -> np.ndarray:
    t = np.arange(-int(4 * sigma + 0.5), int(4 * sigma + 0.5) + 1)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _volume_calls(x: np.ndarray, sigma: float) -> dict[str, Callable[[], object]]:
    import scipy.ndimage

    g = _gaussian(sigma)
    kernel = np.einsum("i,j,k->ijk", g, g, g).astype(np.float32)
    return {"fftconv": lambda: fftconv.convolve(x, kernel, boundary="reflect"),
            "gaussian_filter": lambda: scipy.ndimage.gaussian_filter(
                x, sigma, mode="reflect", truncate=4.0)}


def volume_rows(cases, rounds: int, rng) -> list[str]:
    rows = []
    for shape, sigma in cases:
        x = rng.random(shape, dtype=np.float32)
        size, taps = "×".join(map(str, shape)), _gaussian(sigma).size
        rows.append(row(f"volume {size} ⊛ Gaussian σ={sigma:g} ({taps}³, separable)",
                        medians(_volume_calls(x, sigma), rounds)))
    return rows


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    rng = np.random.default_rng(0)
    if args.quick:
        rows = (signal_rows([(10**4, 15), (10**5, 301)], 3, rng)
                + volume_rows([((8, 32, 32), 1.0)], 3, rng))
    else:
        rows = signal_rows(SIGNALS, args.rounds, rng) + volume_rows(VOLUMES, args.rounds, rng)
    report(args, "lines", "Kernels along a line",
           f"float32. Medians of {3 if args.quick else args.rounds} interleaved rounds, ms. "
           "Ratio = peer / fftconv (> 1: fftconv faster).",
           ("case", "fftconv ms", "peers ms (ratio)"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
