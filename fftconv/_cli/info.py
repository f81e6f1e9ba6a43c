"""``fftconv backends``, ``plan`` and ``calibrate``: what would run here, and its rates."""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import fftconv
from fftconv._core.settings import resolve
from fftconv._io import open_image
from fftconv._io.kernel_spec import parse_kernel
from fftconv._io.ome import pixel_sizes, source_metadata
from fftconv._ops.calibrate import calibrate
from fftconv._registry.discovery import backend_infos, get_backend


def cmd_backends(args: argparse.Namespace) -> int:

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        infos = backend_infos()
    print(f"{'name':<10} {'status':<14} {'version':<10} {'threads':<8} detail")
    for info in infos:
        caps = info.capabilities
        threads = "" if caps is None else ("yes" if caps.threads else "no")
        detail = info.detail or (
            "native: " + ", ".join(sorted(str(d) for d in caps.native_dtypes)) if caps else "")
        print(f"{info.name:<10} {info.status:<14} {info.version:<10} {threads:<8} {detail}")
    print(f"\nin effect: {resolve().backend}", end="")

    print(f" -> {get_backend()}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:

    image, dtype, sizes = args.image, args.dtype, None
    if isinstance(image, str):  # a file: its shape and dtype from its metadata
        opened = open_image(image)
        image, dtype = opened.shape, dtype or np.result_type(opened.dtype, np.float32)
        sizes = pixel_sizes(source_metadata(args.image), len(image))
    kernel = args.kernel
    if isinstance(kernel, str):
        found = parse_kernel(kernel, ndim=len(image))
        kernel = found.shape if isinstance(found, np.ndarray) else found.shape(sizes)
    plan = fftconv.plan(image, kernel, dtype=dtype or "float32", mode=args.mode,
                        boundary=args.boundary, method=args.method, backend=args.backend,
                        workers=args.workers)
    print(f"image {' x '.join(map(str, image))}, kernel {' x '.join(map(str, kernel))}")
    print(plan.explain())
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:

    backends = args.backend or None
    threads = [int(t) for t in args.threads.split(",")] if args.threads else None
    path = calibrate(backends=backends, dtypes=tuple(args.dtype or ("float32", "float64")),
                     threads=threads)
    print(f"calibration written to {path}")
    return 0
