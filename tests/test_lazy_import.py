"""``import fftconv`` imports no FFT library, no dask and scans no entry points."""

import subprocess
import sys


def test_import_is_lazy():
    code = (
        "import sys, importlib.metadata as md\n"
        "calls = []\n"
        "orig = md.entry_points\n"
        "md.entry_points = lambda *a, **k: calls.append(1) or orig(*a, **k)\n"
        "import fftconv\n"
        "heavy = [m for m in ('scipy', 'pyfftw', 'dask', 'distributed', 'cv2', 'zarr',"
        " 'tifffile', 'platformdirs', 'xarray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert not calls, 'entry points scanned at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_public_names_are_those_of_all():
    """``dir(fftconv)`` after import shows what ``__all__`` lists and nothing else public
    (before: also ``annotations``, from ``from __future__ import annotations``)."""
    code = (
        "import fftconv\n"
        "extra = {n for n in dir(fftconv) if not n.startswith('_')} ^ set(fftconv.__all__)\n"
        "assert not extra, extra\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
