"""Planner regret: ``auto`` against the best forced method, on a grid of shapes.

Usage: ``python -m benchmarks.regret [--quick]``.  Writes
``benchmarks/results/<machine>-<date>-regret.md`` and a heat map of the chosen
method over image size × kernel size.  A forced method whose estimate is more
than ``SKIP`` times the best estimate is not run (it would take minutes to
hours, e.g. a direct 1025² kernel); the table lists which were skipped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time

import numpy as np

import fftconv
from benchmarks.run import RESULTS

SKIP = 20.0
METHODS = ("direct", "fft", "overlap-add")


def cases(quick: bool):
    if quick:
        yield from [((256, 256), (3, 3)), ((256, 256), (31, 31)), ((4096,), (101,))]
        return
    for n in (256, 1024, 4096, 8192):
        for k in (3, 7, 15, 31, 63, 127, 255, 511, 1025):
            if k < n and not (n == 8192 and k in (7, 15, 63, 511)):
                yield (n, n), (k, k)
    for n in (1024, 4096):
        for k in ((1, 31), (3, 101), (1, 255), (255, 15), (501, 5)):
            yield (n, n), k
    for n, k in ((10**6, 3), (10**6, 101), (10**6, 1001), (10**6, 10001), (10**6, 100001),
                 (10**7, 1001), (10**7, 100001)):
        yield (n,), (k,)
    for n, k in ((128, 3), (128, 7), (128, 15), (128, 31), (256, 7), (256, 31)):
        yield (n, n, n), (k, k, k)


def _interleaved(calls: dict, rounds: int = 5, budget: float = 6.0) -> dict[str, float]:
    """Median time of each call, timed round-robin so machine drift hits all alike."""
    for fn in calls.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    start = time.perf_counter()
    for _ in range(rounds):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return {name: statistics.median(ts) for name, ts in times.items()}


def run_case(shape, kshape, rng) -> dict:
    image = rng.random(shape, dtype=np.float32)
    kernel = rng.random(kshape, dtype=np.float32)  # random: no structured shortcut
    plan = fftconv.plan(shape, kshape)
    estimates = {c.method: c.seconds for c in plan.candidates}
    best_estimate = min(estimates.values())
    skipped = [m for m in METHODS if estimates[m] > SKIP * best_estimate]
    calls = {m: (lambda m=m: fftconv.convolve(image, kernel, method=m))
             for m in METHODS if m not in skipped}
    calls["auto"] = lambda: fftconv.convolve(image, kernel)
    times = _interleaved(calls)
    forced = {m: t for m, t in times.items() if m != "auto"}
    best = min(forced, key=forced.get)
    return {"shape": shape, "kernel": kshape, "auto_method": plan.method, "times": times,
            "skipped": skipped, "best": best, "regret": times["auto"] / forced[best]}


def markdown(rows, meta) -> str:
    regrets = [r["regret"] for r in rows]
    within = sum(r <= 1.3 for r in regrets) / len(regrets)
    lines = [f"# Planner regret — {meta['machine']}, {meta['date']}", "",
             f"float32, 'same', zero boundary, random kernels; threads {meta['threads']}. "
             "Median of up to 5 rounds, methods timed round-robin. "
             "regret = auto / best forced method.", "",
             f"**auto within 1.3× of the best on {within:.0%} of {len(rows)} cases; worst "
             f"{max(regrets):.2f}×; median {statistics.median(regrets):.2f}×.**", "",
             "| image | kernel | auto picks | best forced | auto ms | best ms | regret | "
             "not run (estimate > 20× best) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = "×".join(map(str, r["shape"]))
        kshape = "×".join(map(str, r["kernel"]))
        lines.append(f"| {shape} | {kshape} | {r['auto_method']} | {r['best']} | "
                     f"{r['times']['auto'] * 1e3:.1f} | {r['times'][r['best']] * 1e3:.1f} | "
                     f"{r['regret']:.2f} | {', '.join(r['skipped'])} |")
    return "\n".join(lines) + "\n"


def heatmap(rows, path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    square = [r for r in rows if len(r["shape"]) == 2 and r["kernel"][0] == r["kernel"][1]]
    sizes = sorted({r["shape"][0] for r in square})
    kernels = sorted({r["kernel"][0] for r in square})
    code = {"direct": 0, "fft": 1, "overlap-add": 2}
    grid = np.full((len(sizes), len(kernels)), np.nan)
    for r in square:
        grid[sizes.index(r["shape"][0]), kernels.index(r["kernel"][0])] = code[r["auto_method"]]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.imshow(grid, cmap=matplotlib.colors.ListedColormap(["#4c72b0", "#dd8452", "#55a868"]),
              vmin=-0.5, vmax=2.5, aspect="auto")
    for r in square:
        i, j = sizes.index(r["shape"][0]), kernels.index(r["kernel"][0])
        ax.text(j, i, f"{r['auto_method'][:3]}\n{r['regret']:.2f}×", ha="center",
                va="center", fontsize=7, color="white")
    ax.set(xticks=range(len(kernels)), xticklabels=kernels, yticks=range(len(sizes)),
           yticklabels=[f"{n}²" for n in sizes], xlabel="kernel side", ylabel="image",
           title="auto's choice (dir / fft / ove) and its regret")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for shape, kshape in cases(args.quick):
        rows.append(run_case(shape, kshape, rng))
        r = rows[-1]
        print(f"{shape} ⊛ {kshape}: auto={r['auto_method']} best={r['best']} "
              f"regret {r['regret']:.2f}", flush=True)
    meta = {"machine": platform.node() or "unknown", "date": datetime.date.today().isoformat(),
            "threads": fftconv.config.resolve().threads()}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{meta['machine']}-{meta['date']}-regret{'-quick' if args.quick else ''}"
    stem.with_suffix(".md").write_text(markdown(rows, meta))
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=list))
    heatmap(rows, stem.with_suffix(".png"))
    print(f"wrote {stem.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
