"""``fftconv demo``: the README's main job on a built-in synthetic sky."""

from __future__ import annotations

import argparse
import time

import numpy as np

import fftconv
from fftconv._cli.runtime import limit_malloc_arenas, peak_rss_mib, reset_peak_rss
from fftconv._io import open_image, write_image


def _airy_psf(size: int) -> np.ndarray:
    """A ring-shaped PSF (not separable, so it exercises the 2-D paths)."""
    r = np.hypot(*np.mgrid[-1:1:size * 1j, -1:1:size * 1j]).astype(np.float32)
    psf = np.sinc(6 * r) ** 2 * (r <= 1)
    return (psf / psf.sum()).astype(np.float32)


def sky_block(block, block_info=None):
    """One deterministic block of the synthetic sky (seeded by its position)."""
    location = block_info[None]["array-location"]
    seed = location[0][0] * 1_000_003 + location[1][0]
    rng = np.random.default_rng(seed)
    out = np.zeros(block.shape, dtype=np.float32)
    count = block.size // 250
    rows = rng.integers(0, block.shape[0], count)
    cols = rng.integers(0, block.shape[1], count)
    np.add.at(out, (rows, cols), rng.pareto(1.5, count).astype(np.float32))
    r = np.linspace(location[0][0], location[0][1], block.shape[0], dtype=np.float32)
    c = np.linspace(location[1][0], location[1][1], block.shape[1], dtype=np.float32)
    return out + 1e-6 * np.add.outer(r, c)


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    import dask.array as da


    limit_malloc_arenas()
    n, k, chunk = args.size, args.kernel, args.chunks
    psf = _airy_psf(k)
    print(f"fftconv demo: a {n}x{n} float32 synthetic sky ({n * n * 4 / 2**20:.0f} MiB) on "
          f"disk, convolved out of core with a {k}x{k} PSF, boundary=reflect, "
          f"{chunk}x{chunk} chunks, backend {fftconv.get_backend()}")
    print(fftconv.plan((chunk + k - 1, chunk + k - 1), psf.shape, mode="valid").explain())
    with tempfile.TemporaryDirectory(prefix="fftconv-demo-") as folder:
        source = f"{folder}/sky.zarr"
        blank = da.zeros((n, n), chunks=chunk, dtype=np.float32)
        write_image(da.map_blocks(sky_block, blank, dtype=np.float32), source)
        image = open_image(source)
        reset_peak_rss()
        start = time.perf_counter()
        lazy = fftconv.convolve(image, psf, boundary="reflect")
        write_image(lazy, f"{folder}/result.zarr")
        took = time.perf_counter() - start
        peak = peak_rss_mib()
        result = open_image(f"{folder}/result.zarr")
        print(f"convolved and written in {took:.1f} s ({n * n / took / 1e6:.1f} Mpixel/s), "
              f"peak RSS {peak:.0f} MiB while convolving a {n * n * 4 / 2**20:.0f} MiB image")
        tile = np.asarray(image[: 2 * chunk, : 2 * chunk])
        check = fftconv.convolve(tile, psf, boundary="reflect")[: chunk, : chunk]
        got = np.asarray(result[: chunk, : chunk])
        print(f"check against the in-memory engine on one corner tile: max relative "
              f"difference {np.abs(got - check).max() / np.abs(check).max():.1e}")
        if args.preview:
            step = max(1, n // 1024)  # block maxima: sparse point sources stay visible
            _write_preview(args.preview, np.asarray(da.coarsen(np.max, image, {0: step, 1: step},
                                                               trim_excess=True)),
                           np.asarray(da.coarsen(np.max, result, {0: step, 1: step},
                                                 trim_excess=True)))
    return 0


def _write_preview(path: str, image: np.ndarray, out: np.ndarray) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("preview skipped: install matplotlib for PNG output")
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, data, title in zip(axes, (image, out), ("input", "convolved")):
        low, high = np.percentile(data, [1, 99.5])
        ax.imshow(np.clip(data, low, high), cmap="magma")
        ax.set_title(title)
        ax.axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"preview written to {path}")
