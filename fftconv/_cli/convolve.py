"""``fftconv convolve`` / ``correlate``: a file in, a kernel (file or named), a file out."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import fftconv
from fftconv._cli import resume
from fftconv._cli.axes import choose_axes
from fftconv._cli.dryrun import describe as dry_run
from fftconv._cli.progress import progress
from fftconv._cli.psf import (
    INTEGER_DTYPES,
    one_kernel_axes,
    sensible_kernel,
    to_integer,
    working_dtype,
)
from fftconv._cli.runtime import limit_malloc_arenas, peak_rss_mib, reset_peak_rss, scheduler
from fftconv._core.settings import parse_setting
from fftconv._core.shapes import normalize_axes
from fftconv._io import check_output, open_image, output_format, write_image
from fftconv._io.file_axes import axis_names
from fftconv._io.fits import fits_header, moved_header
from fftconv._io.formats import InputError, file_format
from fftconv._io.kernel_spec import NamedKernel, check_sampling, parse_kernel
from fftconv._io.ome import ngff_order, output_metadata, pixel_sizes, source_metadata, window_shift
from fftconv._io.tiff_scale import ome_tiff_letters
from fftconv._io.urls import is_remote, local


def _kernel_ndim(axes, named, image_ndim: int) -> int | None:
    """A named kernel's dimensions: one per ``--axes``, else per space axis the file names.

    A 1-D image without names gets a 1-D kernel (the default, 2-D, could not fit it).
    """
    if axes is not None:
        return len(axes)
    return sum(is_space for _, is_space in named or ()) or (1 if image_ndim == 1 else None)


def _image_pixels(described, image_ndim: int, kernel_ndim: int, axes) -> list | None:
    """The input's pixel (``described``: :func:`~fftconv._io.ome.source_metadata`'s) along
    each kernel axis: kernel axis i is image axis i, or ``axes[i]`` for a kernel of
    fewer dimensions.  None where the input states no pixel sizes."""

    sizes = pixel_sizes(described, image_ndim)
    if sizes is None:
        return None
    over = range(image_ndim) if kernel_ndim == image_ndim else normalize_axes(
        axes, image_ndim, kernel_ndim)
    return [sizes[ax] for ax in over]


def _kernel_array(found, spec: str, described, image_ndim: int, axes) -> np.ndarray:
    """The kernel :func:`~fftconv._io.kernel_spec.parse_kernel` found in ``spec``, as an array.

    A named kernel's values with a unit become pixels by the input's pixel
    size (``described``: :func:`~fftconv._io.ome.source_metadata`'s) along the
    axis each applies to, and a line says how many.  A kernel file that states
    its pixel sizes (an OME-Zarr, an OME or ImageJ TIFF) must state the input's.
    """

    if not isinstance(found, NamedKernel):
        own = pixel_sizes(source_metadata(spec), found.ndim)
        if own is not None:
            check_sampling(spec, own, _image_pixels(described, image_ndim, found.ndim, axes))
        return found
    if not found.physical:
        return found.array()
    sizes = _image_pixels(described, image_ndim, found.ndim, axes)
    kernel = found.array(sizes)
    pixels = ", ".join(f"{n:.3g}" for n in found.pixels(sizes))
    along = ", ".join(name for name, _, _ in sizes)  # a unit needs sizes: array() checked
    print(f"{found.spec}: {found.parameter} {pixels} pixels along {along}", flush=True)
    return kernel


def _ome_output(source, described, output, image_shape, kernel, axes, mode,
                shape) -> dict | None:
    """The OME metadata of an output of an OME-Zarr input, or of a TIFF with pixel sizes
    (``described``: :func:`~fftconv._io.ome.source_metadata`'s of ``source``).

    A ``.zarr`` output is then an OME-Zarr image, a ``.tif`` one an
    OME-TIFF, with the coarser levels that follow the level read in the input.
    None (and a line saying why, where the input had some) for a plain output.
    """

    suffix = output_format(output)
    if described is None or suffix in (".npy", ".fits"):
        return None
    ome = output_metadata(described, window_shift(image_shape, kernel, axes, mode), shape)
    names = ",".join(a.get("name", "?") for a in described[1].get("axes") or ())
    if ome is None:
        why = "its OME-Zarr axes and scale are not inline, one per axis"
    elif suffix == ".zarr" and not ngff_order(ome["axes"]):
        why = f"its axes ({names}) are not in OME-Zarr's order (time, channel, space)"
    elif suffix != ".zarr" and ome_tiff_letters(ome, shape) is None:
        why = f"OME-TIFF has no place for its axes ({names})"
    else:
        return ome
    print(f"{source}: {why}; {output} is written without its scale", flush=True)
    return None


def _fits_header(source, output, image_shape, kernel, axes, mode) -> dict | None:
    """A FITS input's header for a FITS output, its WCS reference pixels moved by the
    mode's window (the output's sky coordinates are the input's)."""
    if output_format(output) != ".fits" or file_format(Path(source), "input") != ".fits":
        return None
    return moved_header(fits_header(source), window_shift(image_shape, kernel, axes, mode))


def _ome_kind(ome: dict | None, output) -> str:
    """What the closing line says of an OME output, as ``(OME-Zarr 0.5, 3 levels)``."""
    if not ome:
        return ""

    kind = f"OME-Zarr {ome['version']}" if output_format(output) == ".zarr" else "OME-TIFF"
    levels = len(ome["datasets"])
    return f" ({kind}{f', {levels} levels' if levels > 1 else ''})"


def cmd_convolve(args: argparse.Namespace) -> int:
    args.input, args.kernel = str(local(args.input)), str(local(args.kernel))  # file:// URLs
    if args.series is not None:  # a bioformats2raw container's series N is its group N
        args.input = f"{args.input.rstrip('/')}/{args.series}"

    # The kernel file is an input too (a named kernel never matches: outputs have a suffix).
    output = check_output(args.output, args.overwrite, inputs=[args.input, args.kernel])
    limit_malloc_arenas()
    settings = {"memory_limit": args.memory_limit} if args.memory_limit else {}
    if args.halo_reads:
        settings["halo_reads"] = args.halo_reads
    for key, value in settings.items():  # a bad value is the first thing said
        parse_setting(key, value, f"--{key.replace('_', '-')}")
    image = open_image(args.input, chunks=args.chunks or "auto")
    named = axis_names(args.input, image.ndim)
    found = parse_kernel(args.kernel, ndim=_kernel_ndim(args.axes, named, image.ndim))
    # A named kernel spans the space axes (its lengths matter only along the others).
    kernel_shape = found.shape if isinstance(found, np.ndarray) else (1,) * found.ndim
    axes, line = choose_axes(args.axes, named, image.shape, kernel_shape, args.kernel)
    print(f"{args.input}: {line}", flush=True)
    described = source_metadata(args.input)  # an OME-Zarr's or a TIFF's pixel sizes, or None
    kernel = _kernel_array(found, args.kernel, described, image.ndim, axes)
    integer = args.dtype in INTEGER_DTYPES
    work = working_dtype(image.dtype, kernel.dtype, None if integer else args.dtype)
    if not isinstance(found, NamedKernel):  # a named kernel sums to 1, in float32 already
        kernel = sensible_kernel(kernel, args.kernel, args.normalize, work,
                                 one_kernel_axes(kernel.ndim, image.ndim, axes))
    operation = fftconv.correlate if args.command == "correlate" else fftconv.convolve
    with fftconv.config.set(**settings):
        lazy = operation(image, kernel, args.mode, boundary=args.boundary, cval=args.cval,
                         method=args.method, backend=args.backend, workers=args.workers,
                         nan_policy=args.nan_policy, axes=axes,
                         dtype=None if integer else args.dtype)
    if integer:
        lazy = to_integer(lazy, args.dtype)
    # The output keeps the input's axis names, where its format has room for them,
    # and an OME-Zarr input's or a TIFF's pixel sizes (and a .zarr output the origin).
    ome = _ome_output(args.input, described, output, image.shape, kernel, axes, args.mode,
                      lazy.shape)
    if ome is not None and args.ngff_version:
        ome = {**ome, "version": args.ngff_version}
    names = None if named is None or ome else [name for name, _ in named]
    if args.dry_run:
        for text in dry_run(args, image, named, pixel_sizes(described, image.ndim), kernel,
                            axes, lazy, output, ome):
            print(text)
        return 0
    if args.resume and is_remote(output):
        raise InputError(f"--resume needs a local .zarr output (its work is moved into "
                         f"place at the end; {output} is a URL)")
    if args.resume and output_format(output) != ".zarr":
        raise InputError(f"--resume needs a .zarr output, whose chunks are files of their "
                         f"own; {output} is one file")
    compute, client = scheduler(args.scheduler)
    wanted = False if args.quiet else args.progress
    reset_peak_rss()
    start = time.perf_counter()
    note = ""
    try:
        if args.resume:
            note = ", " + resume.run(args, image, kernel, lazy, output, names, ome, compute,
                                     lambda chunks: progress(client, wanted, chunks))
        else:
            with progress(client, wanted, math.prod(lazy.numblocks)):
                write_image(lazy, output, overwrite=args.overwrite, dimension_names=names,
                            ome=ome, chunks=args.output_chunks, shards=args.shards,
                            compression=args.compression,
                            header=_fits_header(args.input, output, image.shape, kernel, axes,
                                                args.mode), **compute)
    finally:
        if client is not None:
            client.close()
    sign = "★" if args.command == "correlate" else "⊛"
    print(f"{args.input} {sign} {args.kernel} -> {output}{_ome_kind(ome, output)}: "
          f"{lazy.shape} {lazy.dtype}, {time.perf_counter() - start:.1f} s, peak RSS "
          f"{peak_rss_mib():.0f} MiB{note}")
    return 0
