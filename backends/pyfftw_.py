"""pyFFTW backend: FFTW plans, reused, thread-safe, with wisdom kept across processes.

* Plans are built with ``pyfftw.FFTW`` on buffers of our own (so planning
  with FFTW_MEASURE can never destroy a caller's array) and kept in an LRU
  cache bounded to 512 MiB of buffers, keyed by (transform, padded shape,
  dtype, axes, threads, effort, calling thread).  Between calls a plan points
  at its own spare output, never at a result it returned.  A plan too large
  for the cache is rebuilt from FFTW's wisdom on each call.
  FFTW plans must not run from two threads at once (pyFFTW #346): each thread
  gets its own plan, and FFTW's planner, which is not thread-safe at all, runs
  under one process-wide lock.
* Inputs are copied into the plan's input buffer (zero-padded to ``s``);
  every call gets a fresh output array, so nothing returned is ever reused.
  ``rfftn_into`` / ``irfftn_into`` instead run the plan on the caller's arrays
  (the Dask path's per-thread buffers, 64-byte aligned).
* Planner effort and time limit come from fftconv's settings
  (``planner_effort``, ``planner_time_limit``).  Wisdom is loaded from
  ``wisdom_path`` (default: the user cache dir) on first use, checked against
  the FFTW build and machine that wrote it, and saved atomically after new
  plans were measured.
"""

from __future__ import annotations

import json
import platform
import threading
import warnings
from pathlib import Path

import numpy as np
from fftconv.backends import (
    CONTRACT_VERSION,
    Cache,
    Capabilities,
    LengthCosts,
    cheapest_length,
    write_atomically,
)

from fftconv import config

EFFORT_FLAGS = {"estimate": "FFTW_ESTIMATE", "measure": "FFTW_MEASURE",
                "patient": "FFTW_PATIENT", "exhaustive": "FFTW_EXHAUSTIVE"}
WISDOM_FORMAT = 1
PLAN_CACHE_SIZE = 32
PLAN_CACHE_BYTES = 512 * 2**20
PLAN_BUFFER_LIMIT = PLAN_CACHE_BYTES // 2
# FFTW's cost of a length m: m^2.4 times a base per element, a little per log2 of each
# factor (a 3, 5 or 7 costs 1.4-3x what a 2 does) and 2.5x the base for an odd length (no
# radix-2 pass to halve a real transform with).  Fitted to m² convolutions at every
# 7-smooth m of three and a half octaves and chosen for the time it saves
# (benchmarks/fft_lengths.py); the exponent past 2 is what grows with size (caches).
FFTW_LENGTH_COSTS = LengthCosts(((2, 0.010), (3, 0.023), (5, 0.014), (7, 0.031)), base=0.306,
                                odd=0.468, exponent=2.4)

_planner_lock = threading.Lock()


def _plan_bytes(plan) -> int:
    return plan.nbytes


class WisdomWarning(RuntimeWarning):
    """FFTW wisdom could not be loaded or saved (planning still works, only slower)."""


def _wisdom_file(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    return config.user_cache_dir() / "fftw-wisdom.json"


def _wisdom_stamp(pyfftw) -> dict:
    return {"format": WISDOM_FORMAT, "pyfftw": pyfftw.__version__,
            "machine": platform.machine(), "processor": platform.processor()}


def load_wisdom(pyfftw, path: Path) -> bool:
    """Import wisdom from ``path``; warn (never raise) when it is unreadable or stale."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        # Nothing there to read; a path that cannot be written is reported on save.
        return False
    except (OSError, ValueError) as err:
        warnings.warn(f"FFTW wisdom at {path} is unreadable and was ignored: {err}",
                      WisdomWarning, stacklevel=2)
        return False
    if not isinstance(record, dict):
        warnings.warn(f"FFTW wisdom at {path} is malformed (a JSON {type(record).__name__}, "
                      "not an object) and was ignored", WisdomWarning, stacklevel=2)
        return False
    stamp = _wisdom_stamp(pyfftw)
    written = {key: record.get(key) for key in stamp}
    if written != stamp:
        warnings.warn(f"FFTW wisdom at {path} is stale (written by {written}, this is {stamp}) "
                      "and was ignored", WisdomWarning, stacklevel=2)
        return False
    try:
        wisdom = tuple(w.encode("ascii") for w in record["wisdom"])
        if len(wisdom) != 3:  # FFTW's single, double and long double precisions
            raise ValueError(f"{len(wisdom)} precisions, not 3")
        loaded = pyfftw.import_wisdom(wisdom)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as err:
        warnings.warn(f"FFTW wisdom at {path} is malformed and was ignored: {err}",
                      WisdomWarning, stacklevel=2)
        return False
    if not all(loaded):
        # pyfftw.import_wisdom reports failure only through its return value.
        warnings.warn(f"FFTW rejected part of the wisdom at {path} (per precision: {loaded})",
                      WisdomWarning, stacklevel=2)
    return any(loaded)


def save_wisdom(pyfftw, path: Path) -> None:
    """Write wisdom atomically: a temporary file beside ``path``, then ``os.replace``."""
    record = dict(_wisdom_stamp(pyfftw), wisdom=[w.decode("ascii")
                                                 for w in pyfftw.export_wisdom()])
    try:  # a full disk, say, leaves nothing beside the wisdom file
        write_atomically(path, json.dumps(record), prefix=".wisdom-")
    except OSError as err:
        warnings.warn(f"FFTW wisdom could not be saved to {path}: {err}", WisdomWarning,
                      stacklevel=2)


class _Plan:
    """One FFTW plan with its own zero-padded input buffer."""

    def __init__(self, fftw, buffer: np.ndarray, spare: np.ndarray, out_shape,
                 out_dtype) -> None:
        self.fftw = fftw
        self.buffer = buffer
        self.spare = spare  # the planning output: parked on the plan between calls
        self.out_shape = out_shape
        self.out_dtype = out_dtype
        self.nbytes = buffer.nbytes + spare.nbytes

    def __call__(self, x: np.ndarray, axes) -> np.ndarray:
        import pyfftw

        buffer = self.buffer
        inside = tuple(slice(0, min(n, L)) for n, L in zip(x.shape, buffer.shape))
        buffer[inside] = x[inside]
        for ax in axes:
            if x.shape[ax] < buffer.shape[ax]:
                tail = [slice(None)] * buffer.ndim
                tail[ax] = slice(x.shape[ax], None)
                buffer[tuple(tail)] = 0
        out = pyfftw.empty_aligned(self.out_shape, dtype=self.out_dtype)
        # __call__, not execute(): only __call__ applies the 1/n of inverse transforms.
        result = self.fftw(input_array=buffer, output_array=out)
        # A plan keeps a reference to the arrays it last ran on: park it on its own spare
        # output, so the caller's result is freed as soon as the caller drops it.
        self.fftw.update_arrays(buffer, self.spare)
        return result


class PyFFTWBackend:
    """FFTs through pyFFTW (FFTW 3): planned, cached, threaded, fast on 7-smooth lengths."""

    name = "pyfftw"
    contract_version = CONTRACT_VERSION
    requires = ("pyfftw",)
    install_hint = "pip install 'fftconv[pyfftw]'"
    priority = 10

    def __init__(self) -> None:
        import pyfftw

        self._pyfftw = pyfftw
        self.version = pyfftw.__version__
        self.capabilities = Capabilities(threads=True, real_into=True)
        # Keyed by the calling thread too: FFTW plans must not run from two threads at once.
        self._plans = Cache("pyFFTW plans", entries=PLAN_CACHE_SIZE, max_bytes=PLAN_CACHE_BYTES,
                            sizeof=_plan_bytes, max_item_bytes=PLAN_BUFFER_LIMIT)
        self._wisdom_loaded_from: Path | None = None
        self._measured: set[tuple] = set()

    # -- planning -----------------------------------------------------------------------

    def _settings(self) -> tuple[str, float | None, Path]:
        # One resolution for all three: every transform asks (a small convolution spent
        # a third of its time resolving settings, three times per transform).
        effort, time_limit, path = config.get("planner_effort", "planner_time_limit",
                                              "wisdom_path")
        return effort, time_limit, _wisdom_file(path)

    def _ensure_wisdom(self, path: Path) -> None:
        if self._wisdom_loaded_from != path:
            load_wisdom(self._pyfftw, path)
            self._wisdom_loaded_from = path

    def _plan(self, kind: str, x: np.ndarray, s, axes, workers: int) -> _Plan:
        effort, time_limit, wisdom = self._settings()
        # Keyed by the padded buffer's shape, not x's: the image and the kernel of one
        # convolution share a plan (and its buffer).  And by the output's: an inverse
        # to 48 and one to 49 read the same 25 complex values.
        in_shape, out_shape = _shapes(kind, x.shape, s, axes)
        signature = (kind, in_shape, out_shape, x.dtype.str, tuple(axes), workers, effort)
        key = (*signature, threading.get_ident())
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        plan = self._build(kind, x, s, axes, workers, effort, time_limit, wisdom)
        if effort != "estimate" and signature not in self._measured:
            self._measured.add(signature)
            save_wisdom(self._pyfftw, wisdom)
        # A plan over PLAN_BUFFER_LIMIT is not kept: rebuilt from wisdom on every call
        # instead (planning is under a millisecond once measured; fresh buffers cost
        # their page faults).
        self._plans.put(key, plan)
        return plan

    def _build(self, kind, x, s, axes, workers, effort, time_limit, wisdom) -> _Plan:
        pyfftw = self._pyfftw
        in_shape, out_shape = _shapes(kind, x.shape, s, axes)
        in_dtype = x.dtype
        if kind == "rfftn":
            out_dtype = np.result_type(x.dtype, np.complex64)
        elif kind == "irfftn":
            out_dtype = np.empty(0, x.dtype).real.dtype
        else:
            out_dtype = x.dtype
        direction = "FFTW_BACKWARD" if kind in ("irfftn", "ifftn") else "FFTW_FORWARD"
        flags = [EFFORT_FLAGS[effort]]
        if kind == "irfftn":
            flags.append("FFTW_DESTROY_INPUT")  # the input is always our own buffer
        with _planner_lock:
            self._ensure_wisdom(wisdom)
            buffer = pyfftw.empty_aligned(in_shape, dtype=in_dtype)
            out = pyfftw.empty_aligned(out_shape, dtype=out_dtype)
            fftw = pyfftw.FFTW(buffer, out, axes=tuple(axes), direction=direction,
                               flags=tuple(flags), threads=max(1, workers),
                               planning_timelimit=time_limit)
        return _Plan(fftw, buffer, out, tuple(out_shape), out_dtype)

    # -- the contract ---------------------------------------------------------------------

    def _run(self, kind, x, s, axes, workers):
        x = np.asarray(x)
        axes = tuple(a % x.ndim for a in axes)
        if kind == "rfftn" and x.dtype.kind != "f":
            raise TypeError(f"rfftn needs real input, got {x.dtype}")
        if kind in ("irfftn", "fftn", "ifftn") and x.dtype.kind != "c":
            x = x.astype(np.result_type(x.dtype, np.complex64))
        if kind == "irfftn":
            expected = list(x.shape)
            expected[axes[-1]] = s[-1] // 2 + 1
            for ax, n in zip(axes[:-1], s[:-1]):
                expected[ax] = n
            x = _fit(x, expected)
        plan = self._plan(kind, x, s, axes, workers)
        return plan(x, axes)

    def rfftn(self, x, s, axes, workers=1):
        return self._run("rfftn", x, s, axes, workers)

    def irfftn(self, x, s, axes, workers=1):
        return self._run("irfftn", x, s, axes, workers)

    def fftn(self, x, s, axes, workers=1):
        return self._run("fftn", x, s, axes, workers)

    def ifftn(self, x, s, axes, workers=1):
        return self._run("ifftn", x, s, axes, workers)

    def rfftn_into(self, x, out, axes, workers=1):
        return self._into("rfftn", x, out, axes, workers)

    def irfftn_into(self, x, out, axes, workers=1):
        return self._into("irfftn", x, out, axes, workers)

    def _into(self, kind: str, x: np.ndarray, out: np.ndarray, axes, workers: int):
        """The cached plan run on the caller's arrays, or through a fresh result and a copy.

        FFTW runs a plan on other arrays only when they are aligned like the
        ones it was planned on (SIMD): an ``out`` that is not is filled by copy.
        The plan is parked on its own buffers afterwards, so it never keeps the
        caller's arrays alive.
        """
        axes = tuple(a % x.ndim for a in axes)
        s = tuple((out if kind == "irfftn" else x).shape[ax] for ax in axes)
        plan = self._plan(kind, x, s, axes, workers)
        try:
            # __call__ copies a misaligned input into the plan's buffer; c2r may destroy x.
            plan.fftw(input_array=x, output_array=out)
        except ValueError:
            out[...] = plan(x, axes)
        finally:
            plan.fftw.update_arrays(plan.buffer, plan.spare)
        return out

    def next_fast_len(self, n: int, real: bool = True) -> int:
        # FFTW has codelets for 2, 3, 5 and 7, not equally fast: the cheapest length, not
        # the smallest (2248 takes 2304, 1.3× faster than 2250 = 2·3²·5³; 1121 takes 1152,
        # 2.3× faster than 1125 = 3²·5³).
        return cheapest_length(int(n), FFTW_LENGTH_COSTS)


def _shapes(kind: str, shape, s, axes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of the plan's input buffer and output for a transform of lengths ``s``."""
    full = list(shape)
    for ax, n in zip(axes, s):
        full[ax] = n
    half = list(full)
    half[axes[-1]] = s[-1] // 2 + 1
    if kind == "rfftn":
        return tuple(full), tuple(half)
    if kind == "irfftn":
        return tuple(half), tuple(full)
    return tuple(full), tuple(full)


def _fit(x: np.ndarray, shape) -> np.ndarray:
    """Crop or zero-pad ``x`` to ``shape`` (numpy.fft's meaning of ``s`` for inverses)."""
    if list(x.shape) == list(shape):
        return x
    out = np.zeros(shape, dtype=x.dtype)
    inside = tuple(slice(0, min(a, b)) for a, b in zip(x.shape, shape))
    out[inside] = x[inside]
    return out

