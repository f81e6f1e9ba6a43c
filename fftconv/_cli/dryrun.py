"""``--dry-run``: what a run would read, compute and write, from the metadata alone.

Nothing is read but the input's metadata and the kernel, nothing is written.
The estimate is the planner's: one tile's plan (the calibrated rates, or the
defaults before ``fftconv calibrate``), times the tiles, over the scheduler's
threads; the memory is a tile's working set per thread.
"""

from __future__ import annotations

import math

import numpy as np

import fftconv
from fftconv._cli.psf import one_kernel_axes
from fftconv._core.settings import cores
from fftconv._io import output_format


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # unreachable


def _shape(shape) -> str:
    return " x ".join(str(int(n)) for n in shape)


def tile_plan(shape, out_chunks, kernel: np.ndarray, axes, dtype):
    """The plan of the largest output block's ``valid`` convolution (the block plus its
    halo), and that tile's shape."""
    ndim = len(shape)
    conv = list(range(ndim)) if axes is None else sorted(a % ndim for a in axes)
    lengths = dict(zip(conv, kernel.shape if kernel.ndim == len(conv) else
                       [kernel.shape[a] for a in conv]))
    block = [max(c) for c in out_chunks]
    tile = tuple(b + lengths.get(i, 1) - 1 for i, b in enumerate(block))
    return fftconv.plan(tile, kernel.shape, dtype=dtype, mode="valid",
                        axes=None if axes is None else tuple(axes)), tile


def describe(args, image, named, sizes, kernel: np.ndarray, axes, lazy, output,
             ome) -> list[str]:
    """The dry run's lines."""
    axes_names = ", ".join(n for n, _ in named) if named else "not named by the file"
    pixel = ", ".join(f"{n} {s:g} {u or ''}".rstrip() for n, s, u in sizes) if sizes else \
        "not stated"
    lines = [
        f"input   {args.input}: {_shape(image.shape)} {image.dtype}, "
        f"{math.prod(image.numblocks)} chunk{'s' if math.prod(image.numblocks) > 1 else ''} "
        f"of {_shape(image.chunksize)}",
        f"        axes {axes_names}; pixel sizes {pixel}",
    ]
    totals = np.sum(kernel, axis=one_kernel_axes(kernel.ndim, image.ndim, axes),
                    dtype=np.complex128).ravel()
    shown = ", ".join(f"{t.real:.6g}" if t.imag == 0 else f"{t:.6g}" for t in totals[:8])
    each = f"sums {shown}{', ...' if totals.size > 8 else ''} (one kernel each)" \
        if totals.size > 1 else f"sum {shown}"
    lines.append(f"kernel  {args.kernel}: {_shape(kernel.shape)} {kernel.dtype}, {each}")
    blocks = math.prod(len(c) for c in lazy.chunks)
    plan, tile = tile_plan(lazy.shape, lazy.chunks, kernel, axes,
                           kernel.dtype if lazy.dtype.kind not in "fc" else lazy.dtype)
    chosen = next(c for c in plan.candidates if c.method == plan.method)
    threads = cores() if (args.scheduler or "threads") == "threads" else 1
    seconds = plan.seconds * blocks / max(1, min(threads, blocks))
    tile_bytes = (math.prod(tile) + math.prod(max(c) for c in lazy.chunks)) * \
        np.dtype(lazy.dtype).itemsize
    peak = min(threads, blocks) * (tile_bytes + chosen.bytes)
    halo = [t - max(c) for t, c in zip(tile, lazy.chunks)]
    lines += [
        f"tiling  {blocks} tile{'s' if blocks > 1 else ''} of up to {_shape(tile)} (output "
        f"block plus halo "
        f"{_shape(halo)}), {len(lazy.__dask_graph__())} graph tasks",
        f"        each tile: {plan.method} on {type(plan.backend).__name__}"
        f"{f', fft shape {_shape(plan.fft_shape)}' if plan.fft_shape else ''}",
        f"estimate about {seconds:.1f} s of computing on {min(threads, blocks)} threads "
        "(the planner's rates; reading and writing not counted), working memory about "
        f"{_size(peak)}",
    ]
    kind = output_format(output)
    raw = math.prod(lazy.shape) * np.dtype(lazy.dtype).itemsize
    codec = args.compression or {".zarr": "blosc-zstd"}.get(kind, "none")
    if codec == "blosc-zstd":
        codec = "blosc-zstd (level 1, byte shuffle: smooth images shrink about 2x)"
    stored = lazy.chunksize if args.output_chunks is None else (
        (args.output_chunks,) * lazy.ndim if isinstance(args.output_chunks, int)
        else args.output_chunks)
    metadata = ""
    if ome:
        metadata = f", OME-{'Zarr ' + ome['version'] if kind == '.zarr' else 'TIFF'}"
    if args.shards and isinstance(args.shards, int):
        args.shards = (args.shards,) * lazy.ndim
    lines += [
        f"output  {output}: {_shape(lazy.shape)} {lazy.dtype}, chunks "
        f"{_shape(stored)}{f', shards {_shape(args.shards)}' if args.shards else ''}"
        f"{metadata}",
        f"        codec {codec}; {_size(raw)} uncompressed",
        "dry run: nothing was read but metadata and the kernel, nothing was written",
    ]
    return lines
