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
        " 'tifffile', 'platformdirs') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert not calls, 'entry points scanned at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
