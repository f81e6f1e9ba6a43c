"""Backend discovery through the ``fftconv.backends`` entry-point group.

Discovery happens on first use and is cached (:func:`refresh_backends` clears
it).  Availability is decided without importing the FFT library
(``importlib.util.find_spec`` on the plugin's ``requires``).  A plugin that
breaks is skipped with a warning in automatic selection and raises an error
carrying its cause when asked for by name.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.metadata
import importlib.util
import warnings
from typing import Any

from fftconv._core.settings import resolve
from fftconv._infra.forks import module_lock
from fftconv._registry.protocol import CONTRACT_VERSION, REQUIRED_METHODS, FFTBackend

GROUP = "fftconv.backends"
KNOWN_HINTS = {
    "numpy": "pip install numpy",
    "scipy": "pip install 'fftconv[scipy]'",
    "pyfftw": "pip install 'fftconv[pyfftw]'",
}


class BackendError(ValueError):
    """A backend asked for by name cannot be used (unknown, not installed or broken).

    The message lists the installed backends (unknown name), the install command
    (not installed) or the original error, which is also the ``__cause__`` (broken).

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> try:
    ...     fftconv.convolve(np.ones(8), np.ones(3), backend="nonesuch")
    ... except fftconv.BackendError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    backend='nonesuch' is not one of the registered backends ... (available: ...)
    """


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """One registered backend and its status: ``available``, ``not installed`` or ``broken``."""

    name: str
    value: str
    distribution: str
    status: str = "available"
    detail: str = ""
    version: str = ""
    capabilities: Any = None
    priority: int = 0


@functools.cache
def _distribution_name(ep: importlib.metadata.EntryPoint) -> str:
    # Reading a distribution's name parses its METADATA file: do it once per entry point.
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ""


@functools.lru_cache(maxsize=1)
def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """One entry point per name; between duplicates fftconv's own wins, then the first by
    distribution name and value, so the choice never depends on discovery order."""
    chosen: dict[str, importlib.metadata.EntryPoint] = {}
    eps = importlib.metadata.entry_points(group=GROUP)
    ranked = sorted(eps, key=lambda ep: (ep.name, _distribution_name(ep) != "fftconv",
                                         _distribution_name(ep), ep.value))
    for ep in ranked:
        if ep.name in chosen:
            if chosen[ep.name].value != ep.value:
                warnings.warn(
                    f"fftconv backend {ep.name!r} is registered twice: using "
                    f"{chosen[ep.name].value} ({_distribution_name(chosen[ep.name]) or '?'}), "
                    f"ignoring {ep.value} ({_distribution_name(ep) or '?'})",
                    RuntimeWarning,
                    stacklevel=3,
                )
            continue
        chosen[ep.name] = ep
    return chosen


_instances: dict[str, Any] = {}
_auto_choice: list[Any] = []
_failures: dict[str, BackendInfo] = {}
_lock = module_lock(globals())
_auto_lock = module_lock(globals(), "_auto_lock")


def refresh_backends() -> None:
    """Forget discovered backends, so newly installed plugins are found (used by tests too).

    Examples
    --------
    >>> import fftconv
    >>> fftconv.refresh_backends()          # e.g. after ``pip install`` of a plugin
    >>> "numpy" in fftconv.available_backends()
    True
    """
    with _lock:
        _entry_points.cache_clear()
        _distribution_name.cache_clear()
        _auto_choice.clear()
        _instances.clear()
        _failures.clear()


def _reraise_interrupt(err: BaseException) -> None:
    """Raise ``err`` again if it is the user's Ctrl-C; anything else a plugin raises while
    loading (``SystemExit``, a ``BaseException`` of its own) makes that plugin broken."""
    if type(err) is KeyboardInterrupt or isinstance(err, GeneratorExit):
        raise err


def _missing_requirement(obj: Any) -> str | None:
    return _missing(getattr(obj, "requires", ()))


def _missing(requires: tuple[str, ...]) -> str | None:
    """The first module of ``requires`` that is not installed (found without importing it)."""
    for module in requires:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


def conformance_problem(backend: Any) -> str | None:
    """Why ``backend`` does not meet the contract, or None if it does (structural check)."""
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(backend, m, None))]
    if missing:
        return f"missing methods {', '.join(missing)}"
    version = getattr(backend, "contract_version", None)
    if version != CONTRACT_VERSION:
        return f"implements contract version {version!r}, fftconv needs {CONTRACT_VERSION}"
    if not isinstance(backend, FFTBackend):
        return "missing attributes of the FFTBackend protocol (name, version, capabilities, ...)"
    declared = getattr(backend.capabilities, "declared_methods", lambda: ())()
    missing = [m for m in declared if not callable(getattr(backend, m, None))]
    if missing:
        return f"capabilities declare {', '.join(missing)}, which it lacks"
    return None


def _load(name: str, ep: importlib.metadata.EntryPoint) -> tuple[Any, BackendInfo]:
    info = BackendInfo(name, ep.value, _distribution_name(ep))
    try:
        factory = ep.load()
    except BaseException as err:  # a plugin's import may fail in any way, SystemExit too
        _reraise_interrupt(err)
        return None, dataclasses.replace(info, status="broken",
                                         detail=f"import failed: {type(err).__name__}: {err}")
    missing = _missing_requirement(factory)
    if missing:
        hint = getattr(factory, "install_hint", "") or KNOWN_HINTS.get(name, "")
        return None, dataclasses.replace(
            info, status="not installed",
            detail=f"needs {missing!r}" + (f"; install with: {hint}" if hint else ""))
    try:
        backend = factory() if callable(factory) else factory
    except BaseException as err:
        _reraise_interrupt(err)
        return None, dataclasses.replace(info, status="broken",
                                         detail=f"could not start: {type(err).__name__}: {err}")
    problem = conformance_problem(backend)
    if problem:
        return None, dataclasses.replace(info, status="broken", detail=f"non-conforming: {problem}")
    return backend, dataclasses.replace(
        info, version=str(backend.version), capabilities=backend.capabilities,
        priority=int(getattr(backend, "priority", 0)))


def _get_or_load(name: str) -> tuple[Any, BackendInfo | None]:
    with _lock:
        if name in _instances:
            return _instances[name], None
        if name in _failures:
            return None, _failures[name]
        ep = _entry_points().get(name)
        if ep is None:
            return None, None
        backend, info = _load(name, ep)
        if backend is None:
            _failures[name] = info
        else:
            _instances[name] = backend
        return backend, info


def backend_infos() -> list[BackendInfo]:
    """Every registered backend with its status (loads each available one)."""
    infos = []
    for name in sorted(_entry_points()):
        backend, info = _get_or_load(name)
        if backend is not None:
            info = BackendInfo(name, _entry_points()[name].value,
                               _distribution_name(_entry_points()[name]),
                               version=str(backend.version), capabilities=backend.capabilities,
                               priority=int(getattr(backend, "priority", 0)))
        infos.append(info)  # type: ignore[arg-type]
    return infos


def available_backends() -> list[str]:
    """Names of the registered backends that can run here, fastest first.

    Examples
    --------
    >>> import fftconv
    >>> "numpy" in fftconv.available_backends()
    True
    """
    infos = [i for i in backend_infos() if i.status == "available"]
    return [i.name for i in sorted(infos, key=lambda i: (-i.priority, i.name))]


def _class_attributes(ep: importlib.metadata.EntryPoint) -> tuple[int, tuple[str, ...]] | None:
    """The ``priority`` and ``requires`` a plugin class states in its source, read without
    importing its module, or None when the source does not say (then it is imported).

    A class with base classes may inherit them, so only a class without bases, or one
    that assigns both itself, is read this way.
    """
    module, _, attr = ep.value.partition(":")
    attr = attr.split("[")[0].strip()
    if not attr or "." in attr:
        return None
    try:
        spec = importlib.util.find_spec(module.strip())
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith(".py"):
            return None
        with open(origin, "rb") as file:
            tree = ast.parse(file.read(), origin)
    except BaseException as err:  # a parent package may fail to import in any way
        _reraise_interrupt(err)
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            return _stated(node)
    return None


def _stated(node: ast.ClassDef) -> tuple[int, tuple[str, ...]] | None:
    values: dict[str, Any] = {}
    for statement in node.body:
        targets = (statement.targets if isinstance(statement, ast.Assign)
                   else [statement.target] if isinstance(statement, ast.AnnAssign)
                   and statement.value is not None else [])
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("priority", "requires"):
                try:
                    values[target.id] = ast.literal_eval(statement.value)  # type: ignore[arg-type]
                except ValueError:
                    return None
    if (node.bases or node.keywords or node.decorator_list) and len(values) < 2:
        return None
    priority, requires = values.get("priority", 0), values.get("requires", ())
    if (not isinstance(priority, int) or isinstance(priority, bool)
            or not isinstance(requires, (tuple, list))
            or not all(isinstance(r, str) for r in requires)):
        return None
    return priority, tuple(requires)


def _rank(name: str, ep: importlib.metadata.EntryPoint) -> int | None:
    """Minus the priority of an installed plugin, None when it cannot run here; imports
    the plugin only when its source does not state both plainly."""
    stated = _class_attributes(ep)
    if stated is not None:
        priority, requires = stated
        return None if _missing(requires) else -priority
    try:
        factory = ep.load()
    except BaseException as err:
        _reraise_interrupt(err)
        warnings.warn(f"fftconv backend {name!r} is broken and was skipped: import failed: "
                      f"{type(err).__name__}: {err}", RuntimeWarning, stacklevel=5)
        return None
    if _missing_requirement(factory) is not None:
        return None
    return -int(getattr(factory, "priority", 0))


def _auto() -> Any:
    """The available backend of highest ``priority``; decided once until :func:`refresh_backends`.

    Ranked on what the plugins' sources state (their classes' ``priority`` and
    ``requires``), so neither a slow nor a broken plugin that would not win is
    imported, and only the winner is instantiated (importing pyFFTW imports dask
    too, when it is installed).  A plugin whose source does not state them is
    imported to read them.
    """
    with _auto_lock:  # one choice, and one warning per broken plugin, per process
        if _auto_choice:
            return _auto_choice[0]
        ranked = []
        for name, ep in _entry_points().items():
            rank = _rank(name, ep)
            if rank is not None:
                ranked.append((rank, name))
        for _, name in sorted(ranked):
            backend, info = _get_or_load(name)
            if backend is not None:
                _auto_choice[:] = [backend]
                return backend
            warnings.warn(f"fftconv backend {name!r} is broken and was skipped: {info.detail}",
                          RuntimeWarning, stacklevel=4)
    raise BackendError(f"no FFT backend can run here; install one: {KNOWN_HINTS['scipy']}")


def load_backend(name: str | Any) -> Any:
    """The backend instance for ``name`` (``"auto"``: the fastest available).

    A backend object (an instance meeting :class:`~.protocol.FFTBackend`) is
    itself, once checked.
    """
    if not isinstance(name, str):
        problem = conformance_problem(name)
        if problem:
            raise BackendError(f"backend={name!r} does not meet the backend contract: {problem}")
        return name
    if name == "auto":
        return _auto()
    backend, info = _get_or_load(name)
    if backend is not None:
        return backend
    if info is None:
        known = sorted(_entry_points())
        hint = f"; install it with: {KNOWN_HINTS[name]}" if name in KNOWN_HINTS else ""
        raise BackendError(
            f"backend={name!r} is not one of the registered backends "
            f"{', '.join(map(repr, known)) or '(none)'} (available: "
            f"{', '.join(map(repr, available_backends())) or 'none'}){hint}"
        )
    raise BackendError(f"backend={name!r} is {info.status}: {info.detail}")


def registered_name(backend: Any) -> str | Any:
    """The name ``backend`` was loaded under, so that :func:`load_backend` finds it again.

    A backend object that was not loaded from the registry is returned as it is.
    """
    with _lock:
        for name, instance in _instances.items():
            if instance is backend:
                return name
    return backend


def get_backend() -> str:
    """The name of the FFT backend in effect here (configuration resolved, ``auto`` chosen).

    Examples
    --------
    >>> import fftconv
    >>> with fftconv.set_backend("numpy"):
    ...     fftconv.get_backend()
    'numpy'
    """
    return str(load_backend(resolve().backend).name)
