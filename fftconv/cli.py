"""The fftconv command line: convolve files out of core, plan, calibrate, backends, demo."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from fftconv import __version__
from fftconv._cli.convolve import cmd_convolve
from fftconv._cli.demo import cmd_demo
from fftconv._cli.info import cmd_backends, cmd_calibrate, cmd_plan
from fftconv._cli.options import file_operation_args, shape_or_file
from fftconv._core.request import METHOD_NAMES
from fftconv._core.shapes import BOUNDARIES, MODES


class _Parser(argparse.ArgumentParser):
    """Bad options: one line on stderr and exit status 2 (no usage block)."""
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fftconv", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fftconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list FFT backends and their status").set_defaults(
        func=cmd_backends)
    p = sub.add_parser("plan", help="show how a convolution of these shapes (or files) would "
                                    "run in memory; for a file's out-of-core run, see "
                                    "'convolve --dry-run'")
    p.add_argument("--image", type=shape_or_file, required=True,
                   help="a shape like 4096x4096, or an image file (its metadata is read)")
    p.add_argument("--kernel", type=shape_or_file, required=True,
                   help="a shape, a kernel file, or a named kernel (gaussian:sigma=3)")
    p.add_argument("--dtype", help="default: the image file's working dtype, or float32")
    p.add_argument("--mode", default="same", choices=MODES)
    p.add_argument("--boundary", default="constant", choices=BOUNDARIES)
    p.add_argument("--method", default="auto", choices=METHOD_NAMES)
    p.add_argument("--backend")
    p.add_argument("--workers", type=int)
    p.set_defaults(func=cmd_plan)
    for name, text in (("convolve", "convolve an image file out of core"),
                       ("correlate", "cross-correlate an image file with a kernel out of core")):
        operation = sub.add_parser(name, help=text, description=text + ".")
        file_operation_args(operation)
        operation.set_defaults(func=cmd_convolve)
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
                    "imagecodecs": "io", "scipy": "scipy", "pyfftw": "pyfftw", "cv2": "opencv",
                    "astropy": "fits", "h5py": "hdf5", "xarray": "xarray", "fsspec": "remote"}


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
        print(f"fftconv: terminated; {_left(args)}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"fftconv: interrupted; {_left(args)}", file=sys.stderr)
        return 130


def _left(args: argparse.Namespace) -> str:
    """What a stopped run leaves: nothing, or a resumable run's work."""
    if getattr(args, "resume", False):
        return ("the chunks written are kept; the same command with --resume finishes "
                "the rest")
    return "nothing was written"


if __name__ == "__main__":
    sys.exit(main())
