"""fftconv against OpenCV's filter2D and matchTemplate (issue #35's benchmark).

Each contender runs in a fresh process per case (OpenCV's thread pool otherwise
keeps spinning into whatever runs next), on the same seeded data, and reports the
median of its calls after one warm-up, and its peak RSS.  Ratio = peer / fftconv
(> 1: fftconv faster).  float32 ``same`` with a zero boundary unless stated;
``Convolver`` is timed against ``convolve`` on the same data.

Usage: ``python -m benchmarks.opencv [--quick] [--repeats N] [--results DIR]``;
writes ``<machine>-<date>-opencv.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

# (kind, image side, kernel side, dtype): the grid.
FULL = [("conv", 2048, 63, "float32"), ("conv", 4096, 15, "float32"),
        ("conv", 4096, 31, "float32"), ("conv", 4096, 63, "float32"),
        ("conv", 4096, 127, "float32"), ("conv", 4096, 255, "float32"),
        ("conv", 4096, 511, "float32"), ("conv", 8192, 127, "float32"),
        ("conv", 4096, 63, "float64"), ("conv", 4096, 127, "float64"),
        ("match", 4096, 255, "float32"), ("match", 2048, 63, "float32")]
QUICK = [("conv", 512, 31, "float32"), ("match", 512, 31, "float32")]
CONTENDERS = {"conv": ["fftconv", "Convolver", "cv2.filter2D", "scipy.fftconvolve",
                       "scipy.oaconvolve"],
              "match": ["fftconv", "cv2.matchTemplate"]}

CHILD = r"""
import json, resource, statistics, sys, time
import numpy as np
kind, n, k, dtype, name, repeats = sys.argv[1:7]
n, k, repeats = int(n), int(k), int(repeats)
rng = np.random.default_rng(0)
image = rng.random((n, n)).astype(dtype)
kernel = rng.random((k, k)).astype(dtype)
if kind == "match":
    kernel = image[n // 3: n // 3 + k, n // 2: n // 2 + k].copy()
if name == "fftconv" and kind == "conv":
    import fftconv
    call = lambda: fftconv.convolve(image, kernel)
elif name == "Convolver":
    import fftconv
    conv = fftconv.Convolver(kernel)
    for _ in range(6):  # its route is timed against convolve's on its first calls
        conv(image)
    call = lambda: conv(image)
elif name == "cv2.filter2D":
    import cv2
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    call = lambda: cv2.filter2D(image, -1, flipped, borderType=cv2.BORDER_CONSTANT)
elif name == "scipy.fftconvolve":
    import scipy.signal
    call = lambda: scipy.signal.fftconvolve(image, kernel, mode="same")
elif name == "scipy.oaconvolve":
    import scipy.signal
    call = lambda: scipy.signal.oaconvolve(image, kernel, mode="same")
elif name == "fftconv":
    import fftconv
    call = lambda: fftconv.match_template(image, kernel)
else:
    import cv2
    call = lambda: cv2.matchTemplate(image, kernel, cv2.TM_CCOEFF_NORMED)
out = call()
times = []
for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
np.save(sys.argv[7], np.asarray(out, dtype=np.float64)[:: max(1, n // 256), :: max(1, n // 256)])
print(json.dumps({"seconds": statistics.median(times),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(case, name: str, repeats: int, folder: Path) -> dict:
    kind, n, k, dtype = case
    sample = folder / f"{kind}-{n}-{k}-{dtype}-{name}.npy"
    done = subprocess.run([sys.executable, "-c", CHILD, kind, str(n), str(k), dtype, name,
                           str(repeats), str(sample)], capture_output=True, text=True,
                          check=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "sample": str(sample)}


def rows(cases, repeats: int, folder: Path) -> list[str]:
    import numpy as np

    found = []
    for case in cases:
        kind, n, k, dtype = case
        results = {name: measure(case, name, repeats, folder) for name in CONTENDERS[kind]}
        ours = results["fftconv"]["seconds"]
        base = np.load(results["fftconv"]["sample"])
        cells = []
        for name, result in results.items():
            sample = np.load(result["sample"])
            diff = float(np.abs(sample - base).max() / (np.abs(base).max() or 1))
            ratio = result["seconds"] / ours
            cells.append(f"{name} {result['seconds'] * 1e3:.0f} ms "
                         f"({ratio:.2f}×, {result['rss_mib']:.0f} MiB, diff {diff:.1e})")
        found.append(f"| {kind} {n}² ⊛ {k}² {dtype} | " + " ; ".join(cells) + " |")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--results", default=None)
    args = parser.parse_args(argv)
    from benchmarks.run import RESULTS, write_report

    folder = Path(args.results) if args.results else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    samples = folder / "opencv-samples"
    samples.mkdir(exist_ok=True)
    table = rows(QUICK if args.quick else FULL, 1 if args.quick else args.repeats, samples)
    import cv2

    import fftconv

    meta = (f"{platform.node()}, {datetime.date.today().isoformat()}, threads "
            f"{fftconv.config.resolve().threads()}, OpenCV {cv2.__version__}")
    text = "\n".join([
        f"# fftconv against OpenCV — {meta}", "",
        "Each contender in a fresh process per case; median of the calls after a warm-up; "
        "ratio = contender / fftconv (< 1: the contender is faster); peak RSS of its "
        "process; diff: the largest difference from fftconv's result, relative.", "",
        "| case | contenders |", "|---|---|", *table])
    for sample in samples.glob("*.npy"):
        sample.unlink()
    samples.rmdir()
    write_report(text, "opencv", args.quick, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
