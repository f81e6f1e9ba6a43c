"""Out of core, zarr to zarr: fftconv's Dask tiling against the ways people do it today.

One run, one data set: a ``SIZE``² float32 image in a zstd-compressed zarr (zarr's default codec) on
disk, convolved with a disk kernel (boundary ``reflect``) and written to a new
zarr.  Each contender runs in its own fresh process (so each peak RSS is its
own, imports included) and the contenders take turns, ``--repeat`` rounds:

* ``copy`` — an identity ``map_blocks`` from zarr to zarr, written by
  ``fftconv.write_image``: the I/O alone, as fftconv writes;
* ``copy store`` — the same written by ``dask.array.store`` into a zarr array
  with fftconv's codec, as the baseline writes;
* ``fftconv`` — ``fftconv.write_image(fftconv.convolve(dask_array, kernel,
  boundary="reflect"), path)``, the README's out-of-core recipe;
* ``fftconv store`` — the same result written by ``dask.array.store`` as the
  baseline's is: zarr's own chunk writes, not ``write_image``'s direct ones;
* ``fftconv CLI`` — ``fftconv convolve image.zarr disk:radius=R out.zarr
  --boundary reflect``, timed and measured by the command itself (it limits
  glibc to one malloc arena, see ``fftconv.cli``);
* ``fftconv CLI hold`` — the same with ``--halo-reads hold``: halo strips cut
  from the one read of each chunk, not a second (faster, holds more);
* ``map_overlap+fftconvolve`` — ``dask.array.map_overlap`` with
  ``scipy.signal.fftconvolve`` per block, the usual recipe, written by
  ``dask.array.store`` into a zarr array with fftconv's codec (its own
  ``to_zarr`` with zarr's default zstd would spend more on encoding);
* ``dask-image`` — ``dask_image.ndfilters.convolve`` (scipy.ndimage per chunk).
  At this kernel size it cannot run (scipy.ndimage allocates about 8·K⁴ bytes
  of offsets), so it is *estimated*: one chunk with a smaller disk is timed and
  scaled by the ratio of non-zero taps and the chunk count over the cores.

The floor is the copy (written as fftconv writes) plus the pyFFTW floor of
fftconv's tiles (one real forward transform, the product and one inverse at
each tile's padded size, plans and kernel spectrum ready, one thread per core
running its share of the tiles), timed in its own process in every round like
a contender, so that each round's ratios compare runs minutes apart on a
machine whose speed drifts.
``--big`` then processes a larger image once with fftconv and reports
its peak memory.  Results go to ``benchmarks/results/<machine>-<date>-dask.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.run import rss

CONTENDERS = ("copy", "copy store", "fftconv", "fftconv store", "fftconv CLI",
              "fftconv CLI hold", "map_overlap+fftconvolve")


def _kernel(radius: int) -> np.ndarray:
    from fftconv._io.kernel_spec import load_kernel

    return load_kernel(f"disk:radius={radius}")  # what the CLI contenders are given


def _sky(block, block_info=None):
    """The demo's synthetic sky on a noisy background, like a real exposure.

    Without the noise the image compresses 80-fold and the copy would time an
    input that hardly exists on disk, while every convolved output is dense.
    """
    from fftconv._cli.demo import sky_block

    location = block_info[None]["array-location"]
    rng = np.random.default_rng([location[0][0], location[1][0], 7])
    noise = rng.normal(100.0, 3.0, block.shape).astype(np.float32)
    return sky_block(block, block_info) + noise


def make_image(path: Path, size: int, chunks: int) -> None:
    """A deterministic synthetic sky, written block by block (never whole in memory)."""
    import dask.array as da
    import zarr

    target = zarr.create_array(str(path), shape=(size, size), chunks=(chunks, chunks),
                               dtype="float32", compressors=zarr.codecs.ZstdCodec())
    blank = da.zeros((size, size), chunks=chunks, dtype=np.float32)
    da.map_blocks(_sky, blank, dtype=np.float32).store(target, lock=False)


def _target(like, path: str):
    import zarr

    from fftconv._io import output_codec

    return zarr.create_array(path, shape=like.shape, chunks=like.chunksize, dtype=like.dtype,
                             compressors=output_codec())


def _lazy(name: str, image, kernel: np.ndarray):
    import dask.array as da

    if name == "copy":
        return image.map_blocks(np.copy, dtype=image.dtype)
    if name == "fftconv":
        import fftconv

        return fftconv.convolve(image, kernel, boundary="reflect")
    if name == "map_overlap+fftconvolve":
        import scipy.signal

        # dask's "reflect" repeats the edge sample, like SPEC's (and scipy.ndimage's) reflect.
        depth = tuple(s // 2 for s in kernel.shape)
        return da.map_overlap(lambda b: scipy.signal.fftconvolve(b, kernel, mode="same"),
                              image, depth=depth, boundary="reflect", dtype=image.dtype)
    raise ValueError(name)


def _writer(name: str):
    """How a contender writes: the baseline and the ``store`` variants by dask's store."""
    if name == "map_overlap+fftconvolve" or name.endswith(" store"):
        return lambda lazy, output: lazy.store(_target(lazy, output), lock=False)
    import fftconv

    return fftconv.write_image


def run_one(name: str, source: str, output: str, radius: int) -> dict:
    """Runs in a child process: one contender, timed, with its own peak RSS."""
    import dask.array as da

    kernel = _kernel(radius)
    image = da.from_zarr(source)
    lazy = _lazy(name.removesuffix(" store"), image, kernel)
    write = _writer(name)
    baseline = rss() / 2**20
    start = time.perf_counter()
    write(lazy, output)
    seconds = time.perf_counter() - start
    return {"name": name, "seconds": seconds, "peak_mib": rss("VmHWM") / 2**20,
            "baseline_mib": baseline}


def run_cli(source: str, output: str, radius: int, *options: str) -> dict:
    """The command line as a user runs it; it reports its own time and peak RSS."""
    out = subprocess.run([sys.executable, "-m", "fftconv.cli", "convolve", source,
                          f"disk:radius={radius}", output, "--boundary", "reflect", *options],
                         check=True, capture_output=True, text=True).stdout
    match = re.search(r", ([0-9.]+) s, peak RSS ([0-9]+) MiB", out)
    if match is None:
        raise RuntimeError(f"unexpected output from fftconv convolve: {out!r}")
    return {"name": " ".join(["fftconv CLI", *options]), "seconds": float(match[1]),
            "peak_mib": float(match[2]),
            "baseline_mib": float("nan")}


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.dask_bench", *args],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def dask_image_estimate(source: str, chunk: int, size: int, radius: int, small: int) -> dict:
    """Time dask-image on one chunk with a ``small``-radius disk; scale to the full job."""
    import dask.array as da
    from dask_image import ndfilters

    small_kernel = _kernel(small)
    crop = da.from_zarr(source)[:chunk, :chunk].rechunk(chunk)
    start = time.perf_counter()
    ndfilters.convolve(crop, small_kernel, mode="reflect").compute(scheduler="sync")
    one = time.perf_counter() - start
    taps = np.count_nonzero(_kernel(radius)) / np.count_nonzero(small_kernel)
    chunks = (size // chunk) ** 2
    cores = os.cpu_count() or 1
    return {"name": "dask-image (estimated)", "seconds": one * taps * chunks / cores,
            "measured": f"one {chunk}² chunk with a {2 * small + 1}² disk: {one:.2f} s, "
                        f"× {taps:.1f} (non-zero taps) × {chunks} chunks / {cores} cores"}


def tile_floor(chunk: int, radius: int, tiles: int) -> dict:
    """pyFFTW's floor for fftconv's tiles: ``tiles`` of them, one thread each, over the cores.

    Each tile is filled, transformed forward, multiplied by the kernel's
    spectrum and transformed back, at the padded size fftconv's planner picks
    for pyFFTW, with plans (FFTW_MEASURE) and the kernel spectrum made before
    the clock starts.  One thread per core, each with its own plans and
    buffers, runs its share of the tiles: what the tiles cost run side by side
    on this machine (memory bandwidth shared), not one tile's time scaled.
    """
    import concurrent.futures

    import pyfftw

    import fftconv

    k = 2 * radius + 1
    side = chunk + k - 1
    plan = fftconv.plan((side, side), (k, k), mode="valid", method="fft", backend="pyfftw")
    shape = plan.fft_shape
    half = (shape[0], shape[1] // 2 + 1)
    cores = os.cpu_count() or 1

    def make():  # on the main thread: FFTW's planner is not thread-safe
        real = pyfftw.empty_aligned(shape, dtype=np.float32)
        spec = pyfftw.empty_aligned(half, dtype=np.complex64)
        out = pyfftw.empty_aligned(shape, dtype=np.float32)
        forward = pyfftw.FFTW(real, spec, axes=(0, 1), flags=("FFTW_MEASURE",), threads=1)
        inverse = pyfftw.FFTW(spec, out, axes=(0, 1), direction="FFTW_BACKWARD",
                              flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"), threads=1)
        real[...] = 0.0
        return real, forward, inverse

    workers = [make() for _ in range(cores)]
    real, forward, _ = workers[0]
    real[:side, :side] = 1.0
    kernel_spectrum = forward().copy()

    def run(worker, count: int) -> None:
        real, forward, inverse = worker
        for _ in range(count):
            real[:side, :side] = 1.0
            spectrum = forward()
            spectrum *= kernel_spectrum
            inverse()

    shares = [tiles // cores + (i < tiles % cores) for i in range(cores)]
    with concurrent.futures.ThreadPoolExecutor(cores) as pool:
        start = time.perf_counter()
        for done in [pool.submit(run, w, n) for w, n in zip(workers, shares)]:
            done.result()
        seconds = time.perf_counter() - start
    return {"name": "floor", "seconds": seconds, "tile": side, "fft_shape": list(shape),
            "per_tile": seconds * cores / tiles, "peak_mib": rss("VmHWM") / 2**20,
            "baseline_mib": float("nan")}


def _check(folder: Path, chunk: int, radius: int) -> float:
    """fftconv's and the baseline's outputs agree with the in-memory engine on a seam region."""
    import zarr

    import fftconv

    kernel = _kernel(radius)
    source = zarr.open_array(str(folder / "image.zarr"), mode="r")
    window = slice(0, 2 * chunk)
    expected = fftconv.convolve(np.asarray(source[window, window]), kernel,
                                boundary="reflect")[: chunk + chunk // 2, : chunk + chunk // 2]
    worst = 0.0
    for name in ("fftconv", "map_overlap+fftconvolve"):
        got = zarr.open_array(str(folder / f"{name}.zarr"), mode="r")
        got = got[: chunk + chunk // 2, : chunk + chunk // 2]
        worst = max(worst, float(np.abs(got - expected).max() / np.abs(expected).max()))
    return worst


def _summary(rows: list[dict]) -> dict:
    times = [r["seconds"] for r in rows]
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "peak_mib": max(r["peak_mib"] for r in rows),
            "baseline_mib": statistics.median(r["baseline_mib"] for r in rows)}


def _round_ratios(rows: dict[str, list[dict]]) -> dict[str, list[float]]:
    """Per round: the baseline's time over fftconv's (as it writes, and by store), and
    fftconv's over copy + floor.

    The machine's speed drifts between rounds (the floor alone has ranged over
    2× in one day); within a round the contenders ran minutes apart.
    """
    per = zip(rows["fftconv"], rows["fftconv store"], rows["map_overlap+fftconvolve"],
              rows["copy"], rows["floor"])
    speed, store, floor = [], [], []
    for ours, stored, base, copy, fl in per:
        speed.append(base["seconds"] / ours["seconds"])
        store.append(base["seconds"] / stored["seconds"])
        floor.append(ours["seconds"] / (copy["seconds"] + fl["seconds"]))
    return {"speed": speed, "store": store, "floor": floor}


def _ratios(values: list[float]) -> str:
    return ", ".join(f"{r:.2f}×" for r in values)


def _versions() -> str:
    from importlib.metadata import version

    names = ("fftconv", "numpy", "scipy", "dask", "zarr", "pyfftw", "dask-image")
    return ", ".join(f"{n} {version(n)}" for n in names)


def report(results: dict, args: argparse.Namespace) -> str:
    s = results["summary"]
    copy, ours = s["copy"]["median"], s["fftconv"]["median"]
    base = s["map_overlap+fftconvolve"]["median"]
    fl = results["floor"]
    floor = copy + fl["median"]
    rounds = _round_ratios(results["rows"])
    gib = args.size**2 * 4 / 2**30
    lines = [
        f"# Out of core: {args.size}² float32 zarr (zstd, {args.chunks}² chunks, {gib:.0f} GiB) "
        f"⊛ {2 * args.radius + 1}² disk, reflect, zarr out",
        "",
        f"Machine: {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}; "
        f"dask threaded scheduler; {args.repeat} rounds, each contender in a fresh process.  ",
        f"Versions: {_versions()}.",
        "",
        "| contender | median s | min–max s | peak RSS MiB (after imports) | vs fftconv |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in CONTENDERS:
        r = s[name]
        base_mib = "" if r["baseline_mib"] != r["baseline_mib"] else f" ({r['baseline_mib']:.0f})"
        lines.append(f"| {name} | {r['median']:.2f} | {r['min']:.2f}–{r['max']:.2f} | "
                     f"{r['peak_mib']:.0f}{base_mib} | {r['median'] / ours:.2f}× |")
    est = results["dask_image"]
    lines += [
        f"| {est['name']} | {est['seconds']:.0f} | — | — | {est['seconds'] / ours:.0f}× |",
        "",
        f"dask-image: {est['measured']}.  ",
        f"Floor: copy {copy:.2f} s + pyFFTW floor of {results['tiles']} tiles of "
        f"{fl['tile']}² (padded {fl['fft_shape']}) over {os.cpu_count()} threads, measured "
        f"in each round {fl['median']:.2f} s ({fl['min']:.2f}–{fl['max']:.2f}; "
        f"{fl['median'] * (os.cpu_count() or 1) / results['tiles'] * 1e3:.0f} ms a tile) "
        f"= {floor:.2f} s.  ",
        "Round by round (each round's contenders and floor ran one after another): "
        "map_overlap+fftconvolve ÷ fftconv " + _ratios(rounds["speed"])
        + "; ÷ fftconv store " + _ratios(rounds["store"])
        + "; fftconv ÷ (copy + floor) " + _ratios(rounds["floor"]) + ".  ",
        f"**fftconv vs map_overlap+fftconvolve: {base / ours:.2f}× faster (round median "
        f"{statistics.median(rounds['speed']):.2f}×); written by dask's store as the "
        f"baseline is, {base / s['fftconv store']['median']:.2f}× (round median "
        f"{statistics.median(rounds['store']):.2f}×); CLI "
        f"{base / s['fftconv CLI']['median']:.2f}×, CLI with --halo-reads hold "
        f"{base / s['fftconv CLI hold']['median']:.2f}× at "
        f"{s['fftconv CLI hold']['peak_mib']:.0f} MiB; vs floor: {ours / floor:.2f}× "
        f"(round median {statistics.median(rounds['floor']):.2f}×); "
        f"peak RSS {s['fftconv']['peak_mib']:.0f} MiB (store "
        f"{s['fftconv store']['peak_mib']:.0f} MiB, CLI "
        f"{s['fftconv CLI']['peak_mib']:.0f} MiB).**  ",
        f"Agreement with the in-memory engine over the first tiles' seams: max relative "
        f"difference {results['check']:.1e}.",
    ]
    if "big" in results:
        b = results["big"]
        lines += ["", f"Large: {args.big}² float32 ({args.big**2 * 4 / 2**30:.0f} GiB) with "
                      f"fftconv: {b['seconds']:.1f} s, peak RSS {b['peak_mib']:.0f} MiB "
                      f"({b['baseline_mib']:.0f} MiB after imports); the CLI: "
                      f"{results['big_cli']['seconds']:.1f} s, peak RSS "
                      f"{results['big_cli']['peak_mib']:.0f} MiB; the CLI with "
                      f"--halo-reads hold: {results['big_cli_hold']['seconds']:.1f} s, peak RSS "
                      f"{results['big_cli_hold']['peak_mib']:.0f} MiB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--radius", type=int, default=100, help="disk radius (201² kernel)")
    parser.add_argument("--chunks", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", type=int, default=32768, help="0 to skip the large run")
    parser.add_argument("--small-radius", type=int, default=15,
                        help="disk radius for the dask-image estimate")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one == "floor":
        print(json.dumps(tile_floor(args.chunks, args.radius, _tiles(args))))
        return
    if args.one:
        print(json.dumps(run_one(args.one, args.source, args.output, args.radius)))
        return
    folder = Path(tempfile.mkdtemp(prefix="fftconv-dask-bench-", dir=args.workdir))
    try:
        results = _run(folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    stem = Path(args.results) / f"{platform.node() or 'machine'}-{time.strftime('%Y-%m-%d')}-dask"
    stem.parent.mkdir(parents=True, exist_ok=True)  # a --results folder may be new
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    text = report(results, args)
    stem.with_suffix(".md").write_text(text)
    print(text)


def _tiles(args: argparse.Namespace) -> int:
    return (-(-args.size // args.chunks)) ** 2


def _run(folder: Path, args: argparse.Namespace) -> dict:
    source = folder / "image.zarr"
    start = time.perf_counter()
    make_image(source, args.size, args.chunks)
    print(f"wrote {source} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    rows: dict[str, list[dict]] = {name: [] for name in (*CONTENDERS, "floor")}
    for round_ in range(args.repeat):
        for name in rows:
            output = folder / f"{name}.zarr"
            shutil.rmtree(output, ignore_errors=True)
            if name == "fftconv CLI":
                row = run_cli(str(source), str(output), args.radius)
            elif name == "fftconv CLI hold":
                row = run_cli(str(source), str(output), args.radius, "--halo-reads", "hold")
            elif name == "floor":
                row = _child(["--one", "floor", "--size", str(args.size), "--chunks",
                              str(args.chunks), "--radius", str(args.radius)])
            else:
                row = _child(["--one", name, "--source", str(source), "--output",
                              str(output), "--radius", str(args.radius)])
            rows[name].append(row)
            print(f"round {round_}: {name} {row['seconds']:.2f} s, "
                  f"peak {row['peak_mib']:.0f} MiB", file=sys.stderr)
    results = {
        "summary": {name: _summary(r) for name, r in rows.items()},
        "rows": rows,
        "tiles": _tiles(args),
        "floor": rows["floor"][-1] | _summary(rows["floor"]),
        "dask_image": dask_image_estimate(str(source), args.chunks, args.size, args.radius,
                                          args.small_radius),
        "check": _check(folder, args.chunks, args.radius),
    }
    if args.big:
        for name in CONTENDERS:
            shutil.rmtree(folder / f"{name}.zarr", ignore_errors=True)
        shutil.rmtree(source)
        big = folder / "big.zarr"
        make_image(big, args.big, args.chunks)
        results["big"] = _child(["--one", "fftconv", "--source", str(big), "--output",
                                 str(folder / "big-out.zarr"), "--radius", str(args.radius)])
        results["big_cli"] = run_cli(str(big), str(folder / "big-cli.zarr"), args.radius)
        shutil.rmtree(folder / "big-cli.zarr", ignore_errors=True)
        results["big_cli_hold"] = run_cli(str(big), str(folder / "big-hold.zarr"), args.radius,
                                          "--halo-reads", "hold")
    return results


if __name__ == "__main__":
    main()
