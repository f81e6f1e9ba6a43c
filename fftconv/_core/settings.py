"""Settings: built-in defaults < config file < environment < context managers < call arguments.

Nothing is read at import.  The file and the environment are read when a
setting is first resolved (the file is re-read only when it changes), so a
malformed value is an error on first use, naming where it came from.
Context managers use a :class:`contextvars.ContextVar`, so a ``with`` block
in one thread never changes what another thread sees.

Examples
--------
>>> import fftconv
>>> with fftconv.config.set(workers=1, spectrum_cache=0):
...     fftconv.config.get("workers"), fftconv.config.get("spectrum_cache")
(1, 0)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import math
import os
import re
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fftconv._infra.cache import Cache, memoized

PLANNER_EFFORTS = ("estimate", "measure", "patient", "exhaustive")
HALO_READS = ("reread", "hold")
CONFIG_ENV = "FFTCONV_CONFIG"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings in effect for one call (see :func:`fftconv.config.get`)."""

    backend: Any = "auto"  # a registered name, "auto", or a backend object
    workers: int = -1
    planner_effort: str = "measure"
    planner_time_limit: float | None = 10.0
    wisdom_path: str | None = None
    memory_limit: int | None = None
    spectrum_cache: int = 8
    autotune: bool = False
    halo_reads: str = "reread"

    def threads(self) -> int:
        """``workers`` as a positive thread count (negative counts back from all cores)."""
        return resolve_workers(self.workers)


def resolve_workers(workers: int) -> int:
    """scipy.fft's convention: ``-1`` is all cores, ``-2`` all but one, ..."""
    return workers if workers > 0 else max(1, cores() + 1 + workers)


def half_the_memory() -> int:
    """Half the memory this process may have: the machine's, or its address-space cap.

    The bound on what fftconv builds or reads whole when no ``memory_limit`` is set.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound
        total = 2**63
    try:
        import resource

        cap = resource.getrlimit(resource.RLIMIT_AS)[0]
        if cap != resource.RLIM_INFINITY:
            total = min(total, cap)
    except (ImportError, OSError, ValueError):
        pass
    return total // 2


@memoized("core count", entries=1)
def cores() -> int:
    """The CPUs this process may run on, counted once (``os.cpu_count`` took 7 µs a call).

    Under ``taskset``, a cgroup CPU quota (a container's ``--cpus``) or a Slurm
    allocation that is fewer than the machine's cores: threads beyond them
    only take turns.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(count, quota) if quota else count)


CGROUP_CPU_FILES = ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")


def cgroup_cpu_quota(files: tuple[str, ...] = CGROUP_CPU_FILES) -> int | None:
    """The CPUs a cgroup quota allows this process (rounded up), or None without a quota.

    cgroup v2's ``cpu.max`` reads ``"<quota> <period>"`` (``max`` for none);
    v1 keeps the quota and the period in two files.
    """
    for path in files:
        try:
            text = Path(path).read_text().split()
            if path.endswith("cpu.max"):
                quota, period = text[0], text[1]
            else:
                quota = text[0]
                period = Path(path).with_name("cpu.cfs_period_us").read_text().split()[0]
        except (OSError, IndexError):
            continue
        if quota in ("max", "-1"):
            return None
        try:
            return max(1, math.ceil(int(quota) / int(period)))
        except (ValueError, ZeroDivisionError):
            return None
    return None


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(value: object) -> int | None:
    """``512MiB``, ``2GB``, ``1e9`` or an int, to bytes; ``None``/``"none"`` for no limit."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ValueError(f"{value!r} is not a size such as 536870912, '512MiB' or '2GB'")
        number, unit = float(match.group(1)), match.group(2).lower()
    if not math.isfinite(number * _UNITS[unit]):
        raise ValueError(f"{value!r} is not a finite size (use 'none' for no limit)")
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"{value!r} is not a positive size")
    return size


def _integer(value: object, what: str) -> int:
    """``value`` as an int, or ValueError saying it is not ``what``: never a bool, never
    a fraction (``int(2.7)`` would be 2)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value)  # type: ignore[call-overload]
        if number != float(value):  # type: ignore[arg-type]
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not {what}") from None
    return number


def _parse_workers(value: object) -> int:
    what = "a thread count (a nonzero int; -1 is all cores)"
    workers = _integer(value, what)
    if workers == 0:
        raise ValueError(f"{value!r} is not {what}")
    return workers


def _parse_choice(allowed: tuple[str, ...]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, allowed))}")
        return value.lower()

    return parse


def _parse_backend(value: object) -> Any:
    """A backend's name, or a backend object (checked against the contract when loaded)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if not isinstance(value, str) and callable(getattr(value, "rfftn", None)):
        return value
    raise ValueError(f"{value!r} is not a backend name (a string, or 'auto') nor a backend "
                     "object (see fftconv.backends.FFTBackend)")


def _parse_seconds(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} is not a positive finite number of seconds (use 'none' "
                         "for no limit)")
    return seconds


def _parse_path(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"{value!r} is not a path")
    return os.fspath(value)  # type: ignore[return-value]


def _parse_flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a flag (true/false)")


def _parse_count(value: object) -> int:
    count = _integer(value, "a count (an int >= 0)")
    if count < 0:
        raise ValueError(f"{value!r} is not a count (an int >= 0)")
    return count


PARSERS: Mapping[str, Callable[[object], Any]] = MappingProxyType({
    "backend": _parse_backend,
    "workers": _parse_workers,
    "planner_effort": _parse_choice(PLANNER_EFFORTS),
    "planner_time_limit": _parse_seconds,
    "wisdom_path": _parse_path,
    "memory_limit": parse_bytes,
    "spectrum_cache": _parse_count,
    "autotune": _parse_flag,
    "halo_reads": _parse_choice(HALO_READS),
})


def env_name(key: str) -> str:
    return f"FFTCONV_{key.upper()}"


class SettingsWarning(UserWarning):
    """A setting fftconv does not know (a misspelt name) was ignored."""


def _nearest(key: str) -> str:
    """``" (did you mean 'x'?)"`` for the setting closest to ``key``, if one is close."""
    close = difflib.get_close_matches(key.lower(), PARSERS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_setting(key: str, where: str) -> str:
    return (f"{where}: unknown setting {key!r}{_nearest(key)}; settings are "
            f"{', '.join(sorted(PARSERS))}")


def parse_setting(key: str, value: object, where: str) -> Any:
    """Parse one setting, or raise ValueError naming the setting, the value and its source."""
    if key not in PARSERS:
        raise ValueError(_unknown_setting(key, where))
    try:
        return PARSERS[key](value)
    except ValueError as err:
        raise ValueError(f"{where}: bad value for {key!r}: {err}") from None


def user_config_path() -> Path:
    """The config file: ``$FFTCONV_CONFIG``, else ``config.toml`` in the user config dir."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    return _user_file("config", "config.toml", _dir_environment())


def user_cache_dir() -> Path:
    """Where wisdom and calibration live (the user cache dir)."""
    return _user_dir("cache", _dir_environment())


def user_cache_file(name: str) -> Path:
    """``user_cache_dir() / name``, without building the path again on every call."""
    return _user_file("cache", name, _dir_environment())


# What platformdirs reads from the environment.  Its answer is cached per value of
# those: settings are resolved on every call (pyFFTW's on every transform), and
# platformdirs takes about 0.1 ms to answer, a fifth of a small convolution.
_DIR_ENVIRONMENT = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "APPDATA", "LOCALAPPDATA")


def _dir_environment() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in _DIR_ENVIRONMENT)


@memoized("user directories", entries=16)
def _user_dir(kind: str, environment: tuple[str | None, ...]) -> Path:
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")("fftconv"))


@memoized("user files", entries=16)
def _user_file(kind: str, name: str, environment: tuple[str | None, ...]) -> Path:
    return _user_dir(kind, environment) / name


_file_cache = Cache("config files", entries=8)


def read_if_changed(cache: Cache, path: Path, stat: os.stat_result, parse: Callable[[], Any]):
    """``parse()`` of the file at ``path``, cached until its mtime or size changes."""
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = cache.get(str(path))
    if cached and cached[0] == stamp:
        return cached[1]
    value = parse()
    cache.put(str(path), (stamp, value))
    return value


def _file_layer() -> dict[str, Any]:
    path = user_config_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        if os.environ.get(CONFIG_ENV):
            raise ValueError(f"{CONFIG_ENV}={str(path)!r}: no such config file") from None
        return {}
    def parse() -> dict[str, Any]:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as err:
            raise ValueError(f"config file {str(path)!r} is not valid TOML: {err}") from None
        return _file_settings(raw, f"config file {str(path)!r}")

    return read_if_changed(_file_cache, path, stat, parse)


def _file_settings(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The settings of a parsed config file: its ``[fftconv]`` table, or its top level.

    A name fftconv does not know is an error that suggests the nearest; keys beside
    the table are ignored with a :class:`SettingsWarning` (once per version of the
    file: the parse is kept until the file changes).
    """
    table = raw.get("fftconv", raw)
    if not isinstance(table, dict):
        raise ValueError(f"{where}: 'fftconv' must be a table of settings ([fftconv]), "
                         f"not {type(table).__name__}")
    if table is not raw and len(raw) > 1:
        beside = sorted(key for key in raw if key != "fftconv")
        warnings.warn(f"{where}: top-level keys {beside} are ignored; settings go in the "
                      "[fftconv] table", SettingsWarning, stacklevel=2)
    return {key: parse_setting(key, value, where) for key, value in table.items()}


_ENV_CHECKED: list[bool] = []


def _check_env_names() -> None:
    """Warn, once per process, about ``FFTCONV_*`` variables that name no setting."""
    if _ENV_CHECKED:
        return
    _ENV_CHECKED.append(True)
    known = {env_name(key) for key in PARSERS} | {CONFIG_ENV}
    for name in sorted(os.environ):
        if name.startswith("FFTCONV_") and name not in known:
            key = name[len("FFTCONV_"):].lower()
            warnings.warn(f"environment variable {name} names no fftconv setting"
                          f"{_nearest(key)} and is ignored", SettingsWarning, stacklevel=4)


def _env_layer() -> dict[str, Any]:
    _check_env_names()
    found = {}
    for key in PARSERS:
        raw = os.environ.get(env_name(key))
        if raw is not None:
            found[key] = parse_setting(key, raw, f"environment variable {env_name(key)}")
    return found


_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "fftconv_settings", default=MappingProxyType({})
)
# The settings one call resolved, while it runs: what get() answers there.
_call: contextvars.ContextVar[Settings | None] = contextvars.ContextVar(
    "fftconv_call_settings", default=None
)


@contextlib.contextmanager
def in_effect(settings: Settings) -> Iterator[None]:
    """Within: :func:`get` answers from ``settings``, one call's resolved settings.

    A backend asks for its settings on every transform (pyFFTW's effort and
    wisdom); reading the layers each time cost a small FFT convolution about
    0.1 ms a transform.  And a :class:`~fftconv.Convolver`'s backend then sees
    the settings it was made with, as the Convolver promises.
    """
    token = _call.set(settings)
    try:
        yield
    finally:
        _call.reset(token)


def resolve(**call: Any) -> Settings:
    """Settings for one call: every layer, with ``call`` (``None`` = not given) on top."""
    merged: dict[str, Any] = {}
    merged.update(_file_layer())
    merged.update(_env_layer())
    merged.update(_context.get())
    for key, value in call.items():
        if value is not None:
            merged[key] = parse_setting(key, value, f"argument {key}=")
    return Settings(**merged)


class set:
    """Change settings for the current thread / task: now, and until the ``with`` block ends.

    Parameters
    ----------
    **settings
        Any of ``backend``, ``workers``, ``planner_effort``, ``planner_time_limit``,
        ``wisdom_path``, ``memory_limit``, ``spectrum_cache``, ``autotune``, ``halo_reads``.

    Examples
    --------
    >>> import fftconv
    >>> with fftconv.config.set(workers=1, memory_limit="256MiB"):
    ...     fftconv.config.get("memory_limit")
    268435456
    """

    def __init__(self, **settings: Any) -> None:
        parsed = {key: parse_setting(key, value, f"fftconv.config.set({key}=...)")
                  for key, value in settings.items()}
        self._token = _context.set(MappingProxyType({**_context.get(), **parsed}))
        self._call_token = _call.set(None)  # inside a call too, these come first

    def __enter__(self) -> set:
        return self

    def __exit__(self, *exc: object) -> None:
        _call.reset(self._call_token)
        _context.reset(self._token)


def get(key: str, *more: str) -> Any:
    """The value of a setting in effect here (all layers but call arguments).

    Inside a call of fftconv's (a backend asking, on every transform), the
    settings that call resolved, call arguments included; a ``set`` block
    there still comes first.

    Given several names, their values as a tuple, from one resolution of the
    layers (cheaper than one call each).

    Examples
    --------
    >>> import fftconv
    >>> with fftconv.config.set(workers=2, backend="numpy"):
    ...     fftconv.config.get("workers")
    ...     fftconv.config.get("workers", "backend")
    2
    (2, 'numpy')
    """
    for name in (key, *more):
        if name not in PARSERS:
            raise ValueError(f"unknown setting {name!r}; settings are "
                             f"{', '.join(sorted(PARSERS))}")
    settings = _call.get()
    if settings is None:
        settings = resolve()
    if not more:
        return getattr(settings, key)
    return tuple(getattr(settings, name) for name in (key, *more))


def set_backend(name: str) -> set:
    """Use the FFT backend ``name`` from now on in this thread, or inside a ``with`` block.

    Examples
    --------
    >>> import fftconv, numpy as np
    >>> with fftconv.set_backend("numpy"):
    ...     fftconv.get_backend()
    'numpy'
    """
    return set(backend=name)
