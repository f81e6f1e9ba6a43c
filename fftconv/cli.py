"""The ``fftconv`` command line: backends, plan, demo."""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 4096x4096") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 4096x4096")
    return shape


def cmd_backends(args: argparse.Namespace) -> int:
    from fftconv._config import resolve
    from fftconv._registry import backend_infos

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
    from fftconv._registry import get_backend

    print(f" -> {get_backend()}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    import fftconv

    plan = fftconv.plan(args.image, args.kernel, dtype=args.dtype, mode=args.mode,
                        boundary=args.boundary, method=args.method, backend=args.backend,
                        workers=args.workers)
    print(plan.explain())
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from fftconv._calibrate import calibrate

    backends = args.backend or None
    threads = [int(t) for t in args.threads.split(",")] if args.threads else None
    path = calibrate(backends=backends, dtypes=tuple(args.dtype or ("float32", "float64")),
                     threads=threads)
    print(f"calibration written to {path}")
    return 0


def _synthetic_sky(n: int, seed: int = 7) -> np.ndarray:
    """A deterministic test image: point sources on a smooth background, float32."""
    rng = np.random.default_rng(seed)
    image = np.zeros((n, n), dtype=np.float32)
    rows, cols = rng.integers(0, n, (2, n * 4))
    np.add.at(image, (rows, cols), rng.pareto(1.5, rows.size).astype(np.float32))
    ramp = np.linspace(0, 1, n, dtype=np.float32)
    image += 0.05 * np.add.outer(ramp, ramp ** 2)
    return image


def _airy_psf(size: int) -> np.ndarray:
    """A ring-shaped PSF (not separable, so it exercises the 2-D paths)."""
    r = np.hypot(*np.mgrid[-1:1:size * 1j, -1:1:size * 1j]).astype(np.float32)
    psf = np.sinc(6 * r) ** 2 * (r <= 1)
    return (psf / psf.sum()).astype(np.float32)


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cmd_demo(args: argparse.Namespace) -> int:
    import fftconv

    image = _synthetic_sky(args.size)
    psf = _airy_psf(args.kernel)
    print(f"fftconv demo: {args.size}x{args.size} float32 sky ⊛ {args.kernel}x{args.kernel} "
          f"PSF, boundary=reflect, backend {fftconv.get_backend()}")
    print(fftconv.plan(image.shape, psf.shape, boundary="reflect").explain())
    start = time.perf_counter()
    out = fftconv.convolve(image, psf, boundary="reflect")
    took = time.perf_counter() - start
    print(f"fftconv.convolve: {took * 1e3:.0f} ms, result {out.dtype} {out.shape}, "
          f"peak RSS {_peak_rss_mib():.0f} MiB")
    try:
        import scipy.signal
    except ImportError:
        scipy = None
    if scipy is not None:
        padded = np.pad(image, [((args.kernel - 1) // 2, args.kernel // 2)] * 2,
                        mode="symmetric")
        start = time.perf_counter()
        ref = scipy.signal.fftconvolve(padded, psf, mode="valid")
        took_ref = time.perf_counter() - start
        err = float(np.abs(out - ref).max() / np.abs(ref).max())
        print(f"scipy.signal.fftconvolve (same result, pre-padded): {took_ref * 1e3:.0f} ms "
              f"-> fftconv is {took_ref / took:.2f}x its speed; max relative difference "
              f"{err:.1e}")
    if args.preview:
        _write_preview(args.preview, image, out)
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
        ax.imshow(np.log1p(np.maximum(data, 0)), cmap="magma")
        ax.set_title(title)
        ax.axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"preview written to {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fftconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list FFT backends and their status").set_defaults(
        func=cmd_backends)
    p = sub.add_parser("plan", help="show how a convolution of these shapes would run")
    p.add_argument("--image", type=_shape, required=True)
    p.add_argument("--kernel", type=_shape, required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--mode", default="same", choices=["full", "same", "valid"])
    p.add_argument("--boundary", default="constant",
                   choices=["constant", "reflect", "mirror", "nearest", "wrap"])
    p.add_argument("--method", default="auto",
                   choices=["auto", "direct", "fft", "overlap-add"])
    p.add_argument("--backend")
    p.add_argument("--workers", type=int)
    p.set_defaults(func=cmd_plan)
    c = sub.add_parser("calibrate", help="measure the planner's rates on this machine")
    c.add_argument("--backend", action="append", help="backend to measure (repeatable)")
    c.add_argument("--dtype", action="append", default=None, choices=["float32", "float64"])
    c.add_argument("--threads", help="comma-separated thread counts (default: 1 and all)")
    c.set_defaults(func=cmd_calibrate)
    d = sub.add_parser("demo", help="convolve a built-in synthetic image with a large PSF")
    d.add_argument("--size", type=int, default=4096)
    d.add_argument("--kernel", type=int, default=255)
    d.add_argument("--preview", default="fftconv-demo.png")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, OSError) as err:
        print(f"fftconv: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
