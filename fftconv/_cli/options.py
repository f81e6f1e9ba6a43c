"""The command line's argument types and the options of ``convolve`` and ``correlate``."""

from __future__ import annotations

import argparse

from fftconv._cli.psf import INTEGER_DTYPES
from fftconv._core.request import METHOD_NAMES, NAN_POLICIES
from fftconv._core.settings import HALO_READS
from fftconv._core.shapes import BOUNDARIES, MODES
from fftconv._io.codecs import TIFF_CODECS, ZARR_CODECS


def shape_arg(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 4096x4096") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 4096x4096")
    return shape


def shape_or_file(text: str) -> tuple[int, ...] | str:
    """A shape like ``4096x4096``, or anything else as it is (a file, a named kernel)."""
    try:
        return shape_arg(text)
    except argparse.ArgumentTypeError:
        return text


def chunks_arg(text: str) -> int | tuple[int, ...]:
    """A chunk side for every axis (``512``), or one per axis (``1,64,512,512``)."""
    try:
        sides = tuple(int(n) for n in text.split(","))
    except ValueError:
        sides = ()
    if not sides or min(sides) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a chunk side like 512 or sides "
                                         "like 64,512,512")
    return sides[0] if len(sides) == 1 else sides


def axes_arg(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of axes like 0,1") from None


def file_operation_args(v: argparse.ArgumentParser) -> None:
    """The arguments of ``convolve`` and ``correlate``: files in, a file out, SPEC's options."""
    v.add_argument("input", help="image: .zarr, .tif/.tiff or .npy")
    v.add_argument("kernel", help="file (.npy, .tif/.tiff, .zarr; sampled as the input, where "
                   "both state pixel sizes), or gaussian:sigma=S, disk:radius=R, box:size=S "
                   "over the convolved axes (the file's space axes or --axes), or one value "
                   "per axis: gaussian:sigma=1,2,2; in pixels, or in a unit by the input's "
                   "pixel sizes: gaussian:sigma=0.5um")
    v.add_argument("output", help="result: .zarr, .npy or .tif/.tiff, or an array of a "
                   "zarr group: data.zarr/blurred")
    v.add_argument("--series", type=int, help="of a bioformats2raw OME-Zarr (one image "
                   "per series), the series to read (default: 0); the same as INPUT/N")
    v.add_argument("--mode", default="same", choices=MODES,
                   help="output size: the full overlap, the image's (default), or only "
                        "where the kernel fits inside")
    v.add_argument("--boundary", default="constant",
                   choices=BOUNDARIES,
                   help="how the image extends past its edges (default: constant)")
    v.add_argument("--cval", type=float, default=0.0,
                   help="the value past the edges with --boundary constant (default: 0)")
    v.add_argument("--axes", type=axes_arg, help="the image's axes to convolve, e.g. 0,1 for "
                   "an RGB image's rows and columns (default: all; with a kernel of fewer "
                   "dimensions, the space axes the file names: OME-Zarr, TIFF)")
    v.add_argument("--nan-policy", default="propagate",
                   choices=NAN_POLICIES,
                   help="non-finite pixels: NaN only where they fall under the kernel "
                        "(default), an error, or filled from their neighbours (normalized "
                        "convolution)")
    v.add_argument("--dtype", choices=["float32", "float64", "complex64", "complex128",
                                       *INTEGER_DTYPES],
                   help="the result's type (default: float32 for float32 and integer images, "
                        "float64 for float64 ones); uint8, uint16 and int16 results are "
                        "computed in float32, rounded to the nearest integer and clipped to "
                        "the type's range (NaN: 0)")
    v.add_argument("--normalize", action="store_true",
                   help="divide the kernel by its sum (a raw PSF of counts); without it, a "
                        "kernel whose sum is far from 1 (and from 0) gets a warning")
    v.add_argument("--method", default="auto", choices=METHOD_NAMES,
                   help="how each tile is convolved (default: the planner decides)")
    v.add_argument("--backend", help="FFT backend (default: the configured one; see "
                                     "'fftconv backends')")
    v.add_argument("--workers", type=int, help="FFT threads per task (default: 1; the "
                                               "scheduler's threads are the parallelism)")
    v.add_argument("--chunks", type=chunks_arg, help="chunk side, or one per axis as 64,512,512 "
                   "(default: the file's own chunks or tiles when they hold ≥ 4 MiB, else "
                   "blocks of about 16 MiB)")
    v.add_argument("--scheduler", help="threads (default), processes or a dask.distributed "
                                       "address")
    v.add_argument("--memory-limit", help="working memory per call, e.g. 512MiB")
    v.add_argument("--halo-reads", choices=HALO_READS,
                   help="cut the tiles' halo strips from a second read of each chunk (the "
                        "default: less memory) or hold each chunk until its neighbours "
                        "are done (13-20%% faster, holds rows of chunks)")
    v.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    v.add_argument("--output-chunks", type=chunks_arg,
                   help="the stored chunks of a .zarr output, one side or one per axis "
                        "(default: the computed chunks, --chunks)")
    v.add_argument("--shards", type=chunks_arg,
                   help="a zarr v3 output's shards (each a file of whole --output-chunks, "
                        "written by one task), one side or one per axis")
    v.add_argument("--compression", help=f"zarr: {', '.join(ZARR_CODECS)} (default "
                   f"blosc-zstd); TIFF: {', '.join(TIFF_CODECS)} (default none: written in "
                   "place by every task; compressed TIFFs are written a row of tiles at a time)")
    v.add_argument("--ngff-version", choices=["0.4", "0.5"],
                   help="the OME-Zarr version of an OME output (default: the input's; 0.5 "
                        "for a TIFF input); 0.4 is zarr v2, what Fiji and older readers open")
    v.add_argument("--progress", action="store_true", default=None,
                   help="report chunks written, rate and ETA (default: on a terminal); "
                        "elsewhere a line every 5 s, for batch logs; on a dask.distributed "
                        "cluster, its counts, after the dashboard's address")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress report")
    v.add_argument("--resume", action="store_true",
                   help="a .zarr output written chunk by chunk into .OUTPUT.resume beside "
                        "it, kept when the run stops (Ctrl-C, SIGTERM, a crash); the same "
                        "command with --resume again computes only the missing chunks")
    v.add_argument("--dry-run", action="store_true",
                   help="read the input's metadata and the kernel, print the tiling, the "
                        "method, the estimated time and memory and the output; write nothing")
