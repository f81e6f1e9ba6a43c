"""The fftconv command line: convolve files out of core, plan, calibrate, backends, demo."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
import warnings

import numpy as np

import fftconv
from fftconv._core.request import METHOD_NAMES, NAN_POLICIES
from fftconv._core.settings import HALO_READS, resolve
from fftconv._core.shapes import BOUNDARIES, MODES, normalize_axes
from fftconv._io import check_output, open_image, output_format, write_image
from fftconv._io.file_axes import axis_names, default_axes
from fftconv._io.kernel_spec import NamedKernel, check_sampling, parse_kernel
from fftconv._io.ome import ngff_order, output_metadata, pixel_sizes, source_metadata, window_shift
from fftconv._io.tiff_scale import ome_tiff_letters
from fftconv._ops.calibrate import calibrate
from fftconv._registry.discovery import backend_infos, get_backend


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 4096x4096") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 4096x4096")
    return shape


def _chunks(text: str) -> int | tuple[int, ...]:
    """A chunk side for every axis (``512``), or one per axis (``1,64,512,512``)."""
    try:
        sides = tuple(int(n) for n in text.split(","))
    except ValueError:
        sides = ()
    if not sides or min(sides) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a chunk side like 512 or sides "
                                         "like 64,512,512")
    return sides[0] if len(sides) == 1 else sides


def _axes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of axes like 0,1") from None


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

    plan = fftconv.plan(args.image, args.kernel, dtype=args.dtype, mode=args.mode,
                        boundary=args.boundary, method=args.method, backend=args.backend,
                        workers=args.workers)
    print(plan.explain())
    return 0


def _scheduler(spec: str | None):
    """``threads`` / ``processes`` / a dask.distributed address; returns compute kwargs."""
    if spec in (None, "threads", "processes", "synchronous"):
        return {"scheduler": spec or "threads"}, None
    from distributed import Client

    client = Client(spec)
    return {}, client


def _limit_malloc_arenas() -> None:
    """One glibc malloc arena for this process (Linux; a no-op elsewhere).

    With one arena per thread, the large buffers that tasks free on one thread and
    allocate on another fragment into several arenas.  The 16384² out-of-core
    benchmark peaks at 426-489 MiB that way and at 344-353 MiB with one arena.
    One arena can cost time, as the threads then share its lock: interleaved
    runs on a noisy day gave 7.0-7.3 s against 7.9-8.3 s, and another set
    6.6-7.7 s against 6.6-8.5 s.  The command line owns its process, so it can
    choose memory; library users can set ``MALLOC_ARENA_MAX=1`` themselves.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _progress(client):
    """dask's progress bar on a terminal, for the local schedulers; else nothing."""
    if sys.stderr.isatty() and client is None:
        from dask.diagnostics import ProgressBar

        return ProgressBar(out=sys.stderr)
    return contextlib.nullcontext()


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
    if described is None or suffix == ".npy":
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


def _ome_kind(ome: dict | None, output) -> str:
    """What the closing line says of an OME output, as ``(OME-Zarr 0.5, 3 levels)``."""
    if not ome:
        return ""

    kind = f"OME-Zarr {ome['version']}" if output_format(output) == ".zarr" else "OME-TIFF"
    levels = len(ome["datasets"])
    return f" ({kind}{f', {levels} levels' if levels > 1 else ''})"


def cmd_convolve(args: argparse.Namespace) -> int:

    # The kernel file is an input too (a named kernel never matches: outputs have a suffix).
    output = check_output(args.output, args.overwrite, inputs=[args.input, args.kernel])
    _limit_malloc_arenas()
    image = open_image(args.input, chunks=args.chunks or "auto")
    named = axis_names(args.input, image.ndim)
    found = parse_kernel(args.kernel, ndim=_kernel_ndim(args.axes, named, image.ndim))
    axes = args.axes
    if axes is None and found.ndim != image.ndim:
        axes, why = default_axes(named, image.ndim, found.ndim)
        print(f"{args.input}: {why}", flush=True)
    described = source_metadata(args.input)  # an OME-Zarr's or a TIFF's pixel sizes, or None
    kernel = _kernel_array(found, args.kernel, described, image.ndim, axes)
    settings = {"memory_limit": args.memory_limit} if args.memory_limit else {}
    if args.halo_reads:
        settings["halo_reads"] = args.halo_reads
    operation = fftconv.correlate if args.command == "correlate" else fftconv.convolve
    with fftconv.config.set(**settings):
        lazy = operation(image, kernel, args.mode, boundary=args.boundary, cval=args.cval,
                         method=args.method, backend=args.backend, workers=args.workers,
                         nan_policy=args.nan_policy, axes=axes, dtype=args.dtype)
    compute, client = _scheduler(args.scheduler)
    # The output keeps the input's axis names, where its format has room for them,
    # and an OME-Zarr input's or a TIFF's pixel sizes (and a .zarr output the origin).
    ome = _ome_output(args.input, described, output, image.shape, kernel, axes, args.mode,
                      lazy.shape)
    names = None if named is None or ome else [name for name, _ in named]
    _reset_peak_rss()
    start = time.perf_counter()
    try:
        with _progress(client):
            write_image(lazy, output, overwrite=args.overwrite, dimension_names=names, ome=ome,
                        **compute)
    finally:
        if client is not None:
            client.close()
    sign = "★" if args.command == "correlate" else "⊛"
    print(f"{args.input} {sign} {args.kernel} -> {output}{_ome_kind(ome, output)}: "
          f"{lazy.shape} {lazy.dtype}, {time.perf_counter() - start:.1f} s, peak RSS "
          f"{_peak_rss_mib():.0f} MiB")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:

    backends = args.backend or None
    threads = [int(t) for t in args.threads.split(",")] if args.threads else None
    path = calibrate(backends=backends, dtypes=tuple(args.dtype or ("float32", "float64")),
                     threads=threads)
    print(f"calibration written to {path}")
    return 0


def _airy_psf(size: int) -> np.ndarray:
    """A ring-shaped PSF (not separable, so it exercises the 2-D paths)."""
    r = np.hypot(*np.mgrid[-1:1:size * 1j, -1:1:size * 1j]).astype(np.float32)
    psf = np.sinc(6 * r) ** 2 * (r <= 1)
    return (psf / psf.sum()).astype(np.float32)


def _reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux; elsewhere the process peak is reported)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sky_block(block, block_info=None):
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


    _limit_malloc_arenas()
    n, k, chunk = args.size, args.kernel, args.chunks
    psf = _airy_psf(k)
    print(f"fftconv demo: a {n}x{n} float32 synthetic sky ({n * n * 4 / 2**20:.0f} MiB) on "
          f"disk, convolved out of core with a {k}x{k} PSF, boundary=reflect, "
          f"{chunk}x{chunk} chunks, backend {fftconv.get_backend()}")
    print(fftconv.plan((chunk + k - 1, chunk + k - 1), psf.shape, mode="valid").explain())
    with tempfile.TemporaryDirectory(prefix="fftconv-demo-") as folder:
        source = f"{folder}/sky.zarr"
        blank = da.zeros((n, n), chunks=chunk, dtype=np.float32)
        write_image(da.map_blocks(_sky_block, blank, dtype=np.float32), source)
        image = open_image(source)
        _reset_peak_rss()
        start = time.perf_counter()
        lazy = fftconv.convolve(image, psf, boundary="reflect")
        write_image(lazy, f"{folder}/result.zarr")
        took = time.perf_counter() - start
        peak = _peak_rss_mib()
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


class _Parser(argparse.ArgumentParser):
    """Bad options: one line on stderr and exit status 2 (no usage block)."""
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fftconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list FFT backends and their status").set_defaults(
        func=cmd_backends)
    p = sub.add_parser("plan", help="show how a convolution of these shapes would run")
    p.add_argument("--image", type=_shape, required=True)
    p.add_argument("--kernel", type=_shape, required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--mode", default="same", choices=MODES)
    p.add_argument("--boundary", default="constant", choices=BOUNDARIES)
    p.add_argument("--method", default="auto", choices=METHOD_NAMES)
    p.add_argument("--backend")
    p.add_argument("--workers", type=int)
    p.set_defaults(func=cmd_plan)
    for name, text in (("convolve", "convolve an image file out of core"),
                       ("correlate", "cross-correlate an image file with a kernel out of core")):
        _file_operation(sub.add_parser(name, help=text, description=text + "."))
    c = sub.add_parser("calibrate", help="measure the planner's rates on this machine")
    c.add_argument("--backend", action="append", help="backend to measure (repeatable)")
    c.add_argument("--dtype", action="append", default=None, choices=["float32", "float64"])
    c.add_argument("--threads", help="comma-separated thread counts (default: 1 and all)")
    c.set_defaults(func=cmd_calibrate)
    d = sub.add_parser("demo", help="convolve a built-in synthetic image with a large PSF")
    d.add_argument("--size", type=int, default=8192)
    d.add_argument("--kernel", type=int, default=255)
    d.add_argument("--chunks", type=int, default=2048)
    d.add_argument("--preview", default="fftconv-demo.png")
    d.set_defaults(func=cmd_demo)
    return parser


def _file_operation(v: argparse.ArgumentParser) -> None:
    """The arguments of ``convolve`` and ``correlate``: files in, a file out, SPEC's options."""
    v.add_argument("input", help="image: .zarr, .tif/.tiff or .npy")
    v.add_argument("kernel", help="file (.npy, .tif/.tiff, .zarr; sampled as the input, where "
                   "both state pixel sizes), or gaussian:sigma=S, disk:radius=R, box:size=S "
                   "over the convolved axes (the file's space axes or --axes), or one value "
                   "per axis: gaussian:sigma=1,2,2; in pixels, or in a unit by the input's "
                   "pixel sizes: gaussian:sigma=0.5um")
    v.add_argument("output", help="result: .zarr, .npy or .tif/.tiff, or an array of a "
                   "zarr group: data.zarr/blurred")
    v.add_argument("--mode", default="same", choices=MODES,
                   help="output size: the full overlap, the image's (default), or only "
                        "where the kernel fits inside")
    v.add_argument("--boundary", default="constant",
                   choices=BOUNDARIES,
                   help="how the image extends past its edges (default: constant)")
    v.add_argument("--cval", type=float, default=0.0,
                   help="the value past the edges with --boundary constant (default: 0)")
    v.add_argument("--axes", type=_axes, help="the image's axes to convolve, e.g. 0,1 for "
                   "an RGB image's rows and columns (default: all; with a kernel of fewer "
                   "dimensions, the space axes the file names: OME-Zarr, TIFF)")
    v.add_argument("--nan-policy", default="propagate",
                   choices=NAN_POLICIES,
                   help="non-finite pixels: NaN only where they fall under the kernel "
                        "(default), an error, or filled from their neighbours (normalized "
                        "convolution)")
    v.add_argument("--dtype", choices=["float32", "float64", "complex64", "complex128"],
                   help="the result's type (default: float32 for float32 and integer images, "
                        "float64 for float64 ones)")
    v.add_argument("--method", default="auto", choices=METHOD_NAMES,
                   help="how each tile is convolved (default: the planner decides)")
    v.add_argument("--backend", help="FFT backend (default: the configured one; see "
                                     "'fftconv backends')")
    v.add_argument("--workers", type=int, help="FFT threads per task (default: 1; the "
                                               "scheduler's threads are the parallelism)")
    v.add_argument("--chunks", type=_chunks, help="chunk side, or one per axis as 64,512,512 "
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
    v.set_defaults(func=cmd_convolve)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's time limit, ``kill``), raised like Ctrl-C's interrupt."""


def _terminate(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM unwinds like Ctrl-C, so the output's temporary copy beside it is removed.

    By default SIGTERM ends the process on the spot, leaving a hidden
    ``.OUTPUT.*`` folder of up to the output's size.  Only the main thread can
    set a handler; elsewhere (``main`` called from a thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# The optional dependencies the command line may need, and the extra that installs each.
OPTIONAL_MODULES = {"dask": "dask", "distributed": "dask", "zarr": "io", "tifffile": "io",
                    "imagecodecs": "io", "scipy": "scipy", "pyfftw": "pyfftw", "cv2": "opencv"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # bad options: argparse prints one usage line, exit 2
    try:
        with _sigterm_unwinds():
            return int(args.func(args))
    except ModuleNotFoundError as err:
        extra = OPTIONAL_MODULES.get((err.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"fftconv: error: this needs {err.name}, which is not installed: "
              f"pip install 'fftconv[{extra}]'", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as err:
        print(f"fftconv: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print("fftconv: terminated; nothing was written", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("fftconv: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
