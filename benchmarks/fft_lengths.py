"""Which padded lengths FFTW is fast on: the measurements behind pyFFTW's ``next_fast_len``.

For every 7-smooth length ``m`` of three octaves, one m² convolution through
FFTW (real forward transform, spectrum product, inverse; one thread,
FFTW_MEASURE, plans and kernel spectrum ready), as time per element.  Then:

* the least-squares fit of the cost model :class:`fftconv._registry.fastlen.LengthCosts`
  (a base, a weight per ``log2`` of each factor, a penalty for odd lengths);
* for every ``n`` of those octaves, how much slower than the best length
  ``>= n`` is the smallest 7-smooth length (the old rule) and the backend's
  choice (the model with the backend's constants), as mean and worst ratios.

Two-dimensional because images are what fftconv convolves most, and because
one-dimensional timings mislead: batched 1-D passes made 4608 cheaper per
element than 4320, yet a 4608² convolution takes 1.2× as long as a 4320² one.

Usage: ``python -m benchmarks.fft_lengths`` (about 5 minutes, most of it
FFTW's planning); writes ``benchmarks/results/<machine>-<date>-fft-lengths.md``
and the timings beside it (``.json``; ``--measured`` reports on those again).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import statistics
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fftconv._ops.calibrate import median_time
from fftconv._registry.fastlen import LengthCosts, cheapest_length, next_smooth, smooth_between

RESULTS = Path(__file__).parent / "results"
# Three octaves, and the start of a fourth: past 4096 a length's size counts for more
# than its factors (4608 = 2⁹·3² is slower than 4320 = 2⁵·3³·5), which the fit must see.
OCTAVES = ((128, 256), (512, 1024), (2048, 4096), (4096, 4608))
GROWTHS = tuple(g / 20 for g in range(11))  # the exponent's part past m², tried in turn
PRIMES = (2, 3, 5, 7)
EXAMPLES = (130, 600, 620, 900, 2100, 2248, 3100)  # n of the octaves where the rules differ


def per_element_ns(n: int) -> float:
    """One n² convolution (real forward, product, inverse), in ns per element."""
    import pyfftw

    real = pyfftw.empty_aligned((n, n), dtype=np.float32)
    spectrum = pyfftw.empty_aligned((n, n // 2 + 1), dtype=np.complex64)
    forward = pyfftw.FFTW(real, spectrum, axes=(0, 1), flags=("FFTW_MEASURE",), threads=1)
    inverse = pyfftw.FFTW(spectrum, real, axes=(0, 1), direction="FFTW_BACKWARD",
                          flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"), threads=1)
    real[...] = 1.0
    kernel = forward().copy()

    def run() -> None:
        real[...] = 1.0
        forward()
        spectrum[...] *= kernel
        inverse()

    repeats = max(3, min(25, 2**24 // (n * n)))
    return 1e9 * median_time(run, repeats) / (n * n)


def _features(m: int) -> list[float]:
    """1, then ``e_p·log2(p)`` for each prime, then 1 if ``m`` is odd: the model's terms."""
    row, rest = [1.0], m
    for p in PRIMES:
        count = 0
        while rest % p == 0:
            count, rest = count + 1, rest // p
        row.append(count * math.log2(p))
    return [*row, float(m % 2)]


def _fit_at(measured: dict[int, float], growth: float) -> LengthCosts:
    """The model at exponent ``2 + growth``, fitted to the log of the time per element."""
    from scipy.optimize import least_squares

    lengths = sorted(measured)
    features = np.array([_features(m) for m in lengths])
    ns = np.array([measured[m] for m in lengths])
    scale = np.exp2(growth * np.log2(np.array(lengths, dtype=float)))

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.log((features @ p) * scale) - np.log(ns)

    # base, one weight per prime, odd; 2's weight at least 0.01 so none is below it
    start = np.array([0.5, *[1.0] * len(PRIMES), 3.0])
    lower = np.array([0.0, 0.01, *[0.0] * (len(PRIMES) - 1), 0.0])
    p = least_squares(residuals, start, bounds=(lower, np.full_like(start, 50.0))).x
    weights = tuple(zip(PRIMES, (max(float(w), float(p[1])) for w in p[1:-1])))
    return LengthCosts(weights, base=float(p[0]), odd=float(p[-1]), exponent=2 + growth)


def fit(measured: dict[int, float]) -> LengthCosts:
    """The fitted model (:func:`_fit_at`) whose choices lose least time, over ``GROWTHS``.

    The exponent past m² stands for what grows with size besides the
    factors (caches); it is chosen by the measure that matters, the mean
    :func:`regret`, not by the fit's residuals.
    """
    def rank(costs: LengthCosts) -> tuple[int, float]:
        lost = regret(measured, lambda n: cheapest_length(n, costs))
        return lost.unscored, lost.mean

    return min((_fit_at(measured, g) for g in GROWTHS), key=rank)


class Regret(NamedTuple):
    """What a rule's choices lose against the fastest measured length, over the octaves."""

    mean: float  # (time at the chosen length) / (time at the fastest measured length >= n)
    worst: float
    unscored: int  # the n whose chosen length was not measured (past the last octave)


def regret(measured: dict[int, float], choose) -> Regret:
    """How much slower ``choose(n)`` is than the cheapest measured length >= n, for each n.

    A model may choose a length past the last, partial octave (4802 for an n of
    4600, say), which was not measured: such an n is counted, not scored, and
    :func:`fit` ranks models with fewer of them first.
    """
    total = {m: m * m * ns for m, ns in measured.items()}
    ratios, unscored = [], 0
    for lo, hi in OCTAVES:
        for n in range(lo + 1, hi + 1):
            chosen = choose(n)
            if chosen not in total:
                unscored += 1
                continue
            best = min(cost for m, cost in total.items() if n <= m <= hi)
            ratios.append(total[chosen] / best)
    if not ratios:
        return Regret(math.inf, math.inf, unscored)
    return Regret(statistics.fmean(ratios), max(ratios), unscored)


def report(measured: dict[int, float], fitted: LengthCosts, costs: LengthCosts) -> str:
    import pyfftw

    old = regret(measured, lambda n: next_smooth(n, PRIMES))
    new = regret(measured, lambda n: cheapest_length(n, costs))
    refit = regret(measured, lambda n: cheapest_length(n, fitted))
    rules = (("smallest 7-smooth (before)", old), ("cheapest by the backend's constants", new),
             ("cheapest by this run's fit", refit))
    unscored = [f"{rule}: {lost.unscored} n chose a length past the measured ones (not scored)."
                for rule, lost in rules if lost.unscored]
    unscored += [""] if unscored else []
    lines = [
        "# FFTW's fast lengths: the smallest 7-smooth length against the cheapest",
        "",
        f"Machine: {platform.node() or 'unknown'} ({platform.machine()}), "
        f"{datetime.date.today()}; pyFFTW {pyfftw.__version__}, one thread, FFTW_MEASURE, "
        f"float32.  {len(measured)} lengths m: every 7-smooth length of "
        + ", ".join(f"[{lo}, {hi}]" for lo, hi in OCTAVES) + ", each timed as one m² "
        "convolution (real forward, product, inverse).",
        "",
        "The cost model, fitted to the ns per element of the m² convolutions (a length "
        "costs m^exponent times the per-element sum):",
        "",
        "| fit | base | 2 | 3 | 5 | 7 (each per log2 of the factor) | odd | exponent |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in (("this run", fitted), ("the backend's constants", costs)):
        weights = dict(c.per_log2)
        lines.append(f"| {name} | {c.base:.3f} | " + " | ".join(
            f"{weights[p]:.3f}" for p in PRIMES) + f" | {c.odd:.3f} | {c.exponent:.2f} |")
    lines += [
        "",
        "For every n of those octaves, the time at the chosen length over the time at the "
        "fastest measured length >= n:",
        "",
        "| rule | mean | worst |",
        "|---|---:|---:|",
        *(f"| {rule} | {lost.mean:.3f} | {lost.worst:.2f} |" for rule, lost in rules),
        "",
        *unscored,
        "Examples, ms per n² convolution at each rule's length:",
        "",
        "| n | smallest 7-smooth | ms | cheapest | ms | speed-up |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n in EXAMPLES:
        a, b = next_smooth(n, PRIMES), cheapest_length(n, costs)
        ta, tb = (m * m * measured[m] / 1e6 for m in (a, b))
        lines.append(f"| {n} | {a} | {ta:.2f} | {b} | {tb:.2f} | {ta / tb:.2f}× |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from fftconv.backends.pyfftw_ import FFTW_LENGTH_COSTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", help="report on the timings of an earlier run's "
                                           "-fft-lengths.json instead of measuring")
    args = parser.parse_args(argv)
    stem = RESULTS / f"{platform.node() or 'machine'}-{datetime.date.today()}-fft-lengths"
    if args.measured:
        measured = {int(m): ns for m, ns in json.loads(Path(args.measured).read_text()).items()}
    else:
        measured = {}
        for lo, hi in OCTAVES:
            for m in smooth_between(lo, hi, PRIMES):
                measured[m] = per_element_ns(m)
                print(f"{m:6d} {measured[m]:6.2f} ns per element", flush=True)
        RESULTS.mkdir(exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(measured, indent=0))
    text = report(measured, fit(measured), FFTW_LENGTH_COSTS)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {stem}.md")


if __name__ == "__main__":
    main()
