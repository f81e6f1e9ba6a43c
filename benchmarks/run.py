"""Run the side-by-side suite and write benchmarks/results/<machine>-<date>.md.

Usage: ``python -m benchmarks.run [--quick] [--sizes 2048,4096] [--kernels 3,7,31,127,255,511]``

Times are medians of repeated calls after one warm-up call (plans, wisdom);
memory is the peak RSS growth of one call in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.peers import CONTENDERS, PEERS, applies
from fftconv._ops.calibrate import times

RESULTS = Path(__file__).parent / "results"


def write_report(text: str, kind: str, quick: bool, folder: Path = RESULTS) -> Path:
    """Write ``text`` to ``<folder>/<machine>-<date>-<kind>[-quick].md`` and print it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{platform.node()}-{datetime.date.today().isoformat()}-{kind}"
                     f"{'-quick' if quick else ''}.md")
    path.write_text(text + "\n")
    print(text)
    return path


def data(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, n)).astype(np.float32),
            rng.uniform(-1, 1, (k, k)).astype(np.float32))


def timings(name: str, n: int, k: int, repeats: int) -> list[float]:
    image, kernel = data(n, k)
    return times(CONTENDERS[name](image, kernel), repeats)


def peak_memory(name: str, n: int, k: int) -> float:
    """Peak RSS growth (bytes) of one call, measured in a fresh interpreter.

    The interpreter first runs the contender once on a small problem, so the
    modules and plans that pulls in are not counted as the call's memory.
    """
    # ru_maxrss survives exec on Linux (a child starts at its parent's peak), so read the
    # process's own high-water mark, reset just before the call.
    code = (
        "import json\n"
        "from benchmarks.run import data, rss_reset, rss\n"
        "from benchmarks.peers import CONTENDERS\n"
        # A small warm-up call first: the imports it triggers are not the call's memory.
        f"CONTENDERS[{name!r}](*data(128, {min(k, 31)}))()\n"
        f"image, kernel = data({n}, {k})\n"
        f"call = CONTENDERS[{name!r}](image, kernel)\n"
        "base = rss_reset()\n"
        "call()\n"
        "print(json.dumps(rss('VmHWM') - base))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent, check=False)
    if result.returncode != 0:
        return float("nan")
    return float(result.stdout.strip().splitlines()[-1])


def rss(field: str = "VmRSS") -> int:
    """A field of /proc/self/status, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_reset() -> int:
    """Reset the peak-RSS mark to the current RSS (writing 5 to clear_refs); return it."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return rss()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("scipy", "pyfftw", "cv2", "astropy", "fftconv"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            out[module] = "missing"
    return out


def run(sizes, kernels, repeats, memory_cases) -> dict:
    rows = []
    for n in sizes:
        for k in kernels:
            for name in CONTENDERS:
                if not applies(name, n, k):
                    continue
                times = timings(name, n, k, repeats)
                rows.append({"n": n, "k": k, "name": name, "median": statistics.median(times),
                             "min": min(times), "max": max(times)})
                print(f"{n}² ⊛ {k}²  {name:<22} {rows[-1]['median'] * 1e3:9.1f} ms",
                      flush=True)
    memory = []
    for n, k in memory_cases:
        for name in CONTENDERS:
            if applies(name, n, k):
                memory.append({"n": n, "k": k, "name": name, "bytes": peak_memory(name, n, k)})
    return {"rows": rows, "memory": memory}


def markdown(result: dict, meta: dict) -> str:
    lines = [f"# fftconv benchmark — {meta['machine']}, {meta['date']}", "",
             f"Threads: {meta['threads']} (cores: {meta['cores']}). Versions: "
             + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".", "",
             "float32 images, 'same' mode, zero boundary. Median of repeated calls "
             "(min–max), after one warm-up call. Ratio = best peer's median / this median "
             "(> 1: faster than every peer measured).", ""]
    rows = result["rows"]
    for n in sorted({r["n"] for r in rows}):
        lines += [f"## {n}×{n}", "",
                  "| kernel | contender | median ms | min–max ms | vs best peer | vs floor |",
                  "|---|---|---|---|---|---|"]
        for k in sorted({r["k"] for r in rows if r["n"] == n}):
            case = [r for r in rows if r["n"] == n and r["k"] == k]
            peers = [r["median"] for r in case if r["name"] in PEERS]
            best_peer = min(peers) if peers else float("nan")
            floor = next((r["median"] for r in case if r["name"].startswith("floor")), None)
            for r in case:
                vs_floor = f"{r['median'] / floor:.2f}×" if floor else ""
                lines.append(f"| {k}² | {r['name']} | {r['median'] * 1e3:.1f} | "
                             f"{r['min'] * 1e3:.1f}–{r['max'] * 1e3:.1f} | "
                             f"{best_peer / r['median']:.2f} | {vs_floor} |")
        lines.append("")
    if result["memory"]:
        lines += ["## Peak memory of one call (RSS growth, fresh process)", "",
                  "| case | contender | MiB | × image bytes |", "|---|---|---|---|"]
        for m in result["memory"]:
            image_bytes = m["n"] ** 2 * 4
            lines.append(f"| {m['n']}² ⊛ {m['k']}² | {m['name']} | {m['bytes'] / 2**20:.0f} | "
                         f"{m['bytes'] / image_bytes:.2f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = result["rows"]
    sizes = sorted({r["n"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(7 * len(sizes), 5), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for name in dict.fromkeys(r["name"] for r in rows):
            pts = sorted((r["k"], r["median"]) for r in rows if r["n"] == n and r["name"] == name)
            if pts:
                ax.loglog(*zip(*pts), marker="o", label=name,
                          linestyle="-" if name.startswith("fftconv") else "--")
        ax.set(title=f"{n}×{n} float32", xlabel="kernel side", ylabel="median seconds")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def plot_memory(result: dict, path: Path) -> None:
    """Peak RSS growth of one call against kernel size, per image size measured."""
    memory = [m for m in result["memory"] if m["bytes"] == m["bytes"]]  # drop NaN (failed)
    if not memory:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    sizes = sorted({m["n"] for m in memory})
    fig, axes = plt.subplots(1, len(sizes), figsize=(7 * len(sizes), 5), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for name in dict.fromkeys(m["name"] for m in memory):
            pts = sorted((m["k"], m["bytes"] / (n * n * 4)) for m in memory
                         if m["n"] == n and m["name"] == name)
            if pts:
                ax.semilogy(*zip(*pts), marker="o", label=name,
                            linestyle="-" if name.startswith("fftconv") else "--")
        ax.set(title=f"{n}×{n} float32: peak memory of one call", xlabel="kernel side",
               ylabel="peak RSS growth / image bytes")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2048,4096")
    parser.add_argument("--kernels", default="3,7,31,127,255,511")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", default="4096:31,4096:127,4096:257,4096:511",
                        help="n:k cases for the peak-memory table ('' for none)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--memory-only", action="store_true",
                        help="re-measure memory into the newest results file of today")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.kernels, args.repeats, args.memory = "256", "3,31", 2, "256:15,256:31"
    os.environ.setdefault("FFTCONV_PLANNER_EFFORT", "measure")
    os.environ.setdefault("FFTCONV_WISDOM_PATH", str(RESULTS / ".wisdom.json"))
    sizes = [int(s) for s in args.sizes.split(",")]
    kernels = [int(k) for k in args.kernels.split(",")]
    memory_cases = [tuple(int(v) for v in c.split(":")) for c in args.memory.split(",") if c]
    import fftconv

    if args.memory_only:
        sizes = []
    result = run(sizes, kernels, args.repeats, memory_cases)

    meta = {"machine": platform.node() or "unknown", "date": datetime.date.today().isoformat(),
            "threads": fftconv.config.resolve().threads(), "cores": os.cpu_count(),
            "versions": versions()}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{meta['machine']}-{meta['date']}{'-quick' if args.quick else ''}"
    if args.memory_only and stem.with_suffix(".json").exists():
        result["rows"] = json.loads(stem.with_suffix(".json").read_text())["rows"]
    stem.with_suffix(".md").write_text(markdown(result, meta))
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, **result}, indent=1))
    plot(result, stem.with_suffix(".png"))
    plot_memory(result, stem.parent / f"{stem.name}-memory.png")
    print(f"wrote {stem.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
