"""The cost model's rates: built-in defaults, or this machine's from ``calibration.json``.

``fftconv calibrate`` (:mod:`fftconv._ops.calibrate`) measures them and
:func:`save` stores them per (backend, dtype, threads) in ``calibration.json``
in the user cache dir; the planner reads them from then on through
:func:`rates_for` (built-in defaults before, and whenever the file is
unreadable — which is reported once).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import warnings
from pathlib import Path

import numpy as np

from fftconv._core.settings import read_if_changed, user_cache_file
from fftconv._infra.cache import Cache
from fftconv._infra.files import write_atomically


@dataclasses.dataclass(frozen=True)
class Rates:
    """Seconds per unit of work, single thread.

    The defaults were measured on a 2-core VM.  ``fftconv calibrate`` measures
    this machine's ``fft``, ``tile``, ``direct_numpy``, ``opencv_*`` and
    ``box``; the fixed costs ``fft_call``, ``numpy_tap`` and ``extra_pass`` keep
    their defaults.
    """

    fft: float = 9.0e-10  # per n·log2(n) of one real transform, its copies included
    # Fixed cost of one FFT-method call beyond a direct one's: spectrum lookup, padded
    # buffers, the backend's calls (measured 115-320 µs on 8²-32² images).
    fft_call: float = 1.5e-4
    tile: float = 1.0e-4  # fixed cost of one overlap tile (Python, slicing, plan lookup)
    direct_numpy: float = 1.0e-9  # per tap·output
    # Fixed cost of one tap on one stripe of the NumPy loop: a slice and two NumPy calls
    # (a 50² image ⊛ 15² took 1.7 ms, 5× its arithmetic).
    numpy_tap: float = 5.0e-6
    opencv_pass: float = 1.2e-9  # per output, whatever the kernel (OpenCV's threads included)
    opencv_tap: float = 4.1e-11  # per tap·output on top of that
    product: float = 1.5e-9  # per complex element of the spectrum product
    box: float = 6.0e-9  # window sums per output per axis (OpenCV ~4e-9, numpy ~9e-9)
    # One more pass of a structured kernel: its request, route, checks and copies; not
    # calibrated (a Convolver's pass, measured: 64² ⊛ 7² separable took 2 × 30 µs more).
    extra_pass: float = 3.0e-5
    thread_efficiency: float = 0.7  # speed-up per extra thread


FORMAT = 1
_loaded = Cache("calibration files", entries=4)


class CalibrationWarning(RuntimeWarning):
    """The calibration file could not be used; built-in rates apply."""


def calibration_path() -> Path:
    return user_cache_file("calibration.json")


def entry_key(backend: str, dtype, threads: int) -> str:
    return f"{backend}|{np.dtype(dtype).str}|{threads}"


def stored_rates() -> dict:
    path = calibration_path()
    try:
        stat = path.stat()
    except OSError:
        return {}
    def parse() -> dict:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or record.get("format") != FORMAT \
                    or not isinstance(record.get("entries"), dict):
                raise ValueError("unknown format")
            return {_checked_key(key): _rates(values)
                    for key, values in record["entries"].items()}
        except (OSError, ValueError, TypeError) as err:
            warnings.warn(f"calibration file {path} is unusable and was ignored ({err}); "
                          "run `fftconv calibrate` to rewrite it", CalibrationWarning,
                          stacklevel=6)
            return {}

    return read_if_changed(_loaded, path, stat, parse)


def _checked_key(key: str) -> str:
    """An entry's key as :func:`entry_key` writes it (backend|dtype|threads), or ValueError."""
    parts = key.split("|")
    try:
        if len(parts) != 3 or not parts[0] or int(parts[2]) < 1 or \
                np.dtype(parts[1]).str != parts[1]:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"entry {key!r} is not backend|dtype|threads") from None
    return key


def _rates(values: dict) -> Rates:
    """Rates from a file entry: known names, positive finite numbers, or ValueError."""
    known = {f.name for f in dataclasses.fields(Rates)}
    if not isinstance(values, dict) or set(values) - known:
        raise ValueError(f"unknown rates {sorted(set(values) - known)}")
    parsed = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 < value < float("inf")):
            raise ValueError(f"rate {name}={value!r} is not a positive number")
        parsed[name] = float(value)
    return Rates(**parsed)


def rates_for(backend: str, dtype, threads: int) -> Rates:
    """Calibrated rates for this backend/dtype/threads (nearest thread count), else defaults."""
    entries = stored_rates()
    if not entries:
        return Rates()
    exact = entries.get(entry_key(backend, dtype, threads))
    if exact is not None:
        return exact
    same = [(abs(int(k.split("|")[2]) - threads), k) for k in entries
            if k.startswith(f"{backend}|{np.dtype(dtype).str}|")]
    return entries[min(same)[1]] if same else Rates()


def save(entries: dict[str, Rates], path: Path | None = None) -> Path:
    """Write atomically (temporary file + rename); the planner reads them from its next plan."""
    path = path or calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "machine": platform.node(), "processor": platform.processor(),
              "entries": {k: dataclasses.asdict(v) for k, v in entries.items()}}
    write_atomically(path, json.dumps(record, indent=1), prefix=".calibration-")
    _loaded.clear()
    return path
