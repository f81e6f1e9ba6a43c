"""Routes remembered: a Convolver plans each image shape once, not each call.

Planning a call (settings, calibration rates, the planner's signature, the
kernel's structure) costs about 0.2 ms: more than convolving a 64² patch
with a 3×3 kernel.  A :class:`Routes` keeps what :func:`fftconv._planning.engine.route`
decided for each request it has seen, so a Convolver applied to many small
images pays that once per shape.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fftconv._core import settings as _config
from fftconv._core.request import Request
from fftconv._infra.cache import Cache
from fftconv._methods.spectra import SpectrumCache, kernel_digest
from fftconv._planning import structured
from fftconv._planning.engine import general_route, route
from fftconv._registry.discovery import load_backend


def route_key(request: Request, general: bool) -> tuple:
    """Everything a route depends on besides the image's values.

    The kernel counts by identity: the entry holds the kernel, so no other
    array can take its ``id`` while the entry lives.
    """
    return (general, id(request.kernel), *_options(request))


def _options(request: Request) -> tuple:
    """A route's key but for the kernel and the settings: the image's shape and options."""
    return (request.image.shape, request.image.dtype.str, request.axes, request.windows,
            request.mode, request.boundary, request.cval, request.dtype.str, request.method)


class _Kept:
    """Routes in a bounded :class:`~fftconv._infra.cache.Cache` (locked, fork-safe)."""

    def __init__(self, name: str, entries: int) -> None:
        self._routes = Cache(name, entries=entries)

    @property
    def entries(self) -> int | None:
        return self._routes.entries

    def __len__(self) -> int:
        return len(self._routes)

    def clear(self) -> None:
        self._routes.clear()

    def _kept(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The value under ``key``, made once and kept when missing."""
        return self._routes.get_or_make(key, make)


class Routes(_Kept):
    """A bounded LRU of routes, called like :func:`fftconv._planning.engine.compute`.

    Parameters
    ----------
    settings : Settings
        Fixed for every route (a Convolver's).
    spectra : SpectrumCache, optional
        Where the routes keep kernel spectra.
    entries : int
        Routes kept; a structured kernel's passes take one each.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv._core import settings as _config
    >>> from fftconv._core.request import build_request
    >>> routes = Routes(_config.resolve())
    >>> request = build_request(np.ones((8, 8)), np.ones((3, 3)), "same", "constant", 0.0,
    ...                         None, "auto", "propagate", None, flip=False)
    >>> float(routes(request)[4, 4]), float(routes(request)[0, 0]), len(routes)
    (9.0, 4.0, 1)
    """

    def __init__(self, settings: _config.Settings, spectra: SpectrumCache | None = None,
                 entries: int = 32) -> None:
        super().__init__("Convolver routes", entries)
        self.settings = settings
        self.spectra = spectra

    def __call__(self, request: Request) -> np.ndarray:
        return self._find(request, general=False)(request)

    def general(self, request: Request) -> np.ndarray:
        """As :func:`fftconv._planning.engine.compute_general` (a structured kernel's passes)."""
        return self._find(request, general=True)(request)

    def _find(self, request: Request, general: bool) -> Callable[[Request], np.ndarray]:
        def chosen():  # with the kernel, whose id is in the key
            if general:
                kept = general_route(request, self.settings, self.spectra)
            else:
                kept = route(request, self.settings, self.spectra, passes=self.general)
            if request.method != "auto" or self.settings.autotune or self.spectra is None:
                return request.kernel, kept
            # What fftconv.convolve would run (the kernel's transform priced): timed
            # against the route that counts on the kept spectra when they differ.
            cold = general_route(request, self.settings, self.spectra, kernel_ready=False)
            return request.kernel, kept if _same_plan(kept, cold) else Trial(kept, cold)

        return self._kept(route_key(request, general), chosen)[1]


def _same_plan(a: Callable, b: Callable) -> bool:
    """Whether two routes run the same plan (routes without a plan count as the same)."""
    plans = [getattr(route, "keywords", {}).get("plan") for route in (a, b)]
    if plans[0] is None or plans[1] is None:
        return plans[0] is plans[1]
    return all(getattr(plans[0], f) == getattr(plans[1], f)
               for f in ("method", "fft_shape", "block_shape"))


class Trial:
    """Two exact routes for one signature: each runs three times in turn, the last two
    timed, and the faster (by its best time) runs from then on.

    A Convolver keeps its kernel spectra, so its planner prices a full FFT without
    the kernel's transform and may prefer it to what :func:`fftconv.convolve` runs;
    the cost model does not see that a large transform misses the cache (4096² ⊛
    63² float32: 240 ms for the full FFT against 88 ms for overlap-add), so both
    are timed on real calls and a Convolver never stays slower than ``convolve``.
    The first run of each includes its kernel spectrum's transform, so it is not
    timed; two timed runs each keep one noisy run from deciding.

    Examples
    --------
    >>> import time
    >>> slow = lambda request: time.sleep(0.002) or "slow"
    >>> trial = Trial(slow, lambda request: "fast")
    >>> [trial(None) for _ in range(7)]
    ['slow', 'fast', 'slow', 'fast', 'slow', 'fast', 'fast']
    """

    TIMED = 2  # timed runs of each route

    def __init__(self, first: Callable, second: Callable) -> None:
        self.routes = (first, second)
        self.runs = 0
        self.times: list[list[float]] = [[], []]
        self.winner: Callable | None = None
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> np.ndarray:
        if self.winner is not None:
            return self.winner(request)
        with self._lock:
            run, self.runs = self.runs, self.runs + 1
        which = run % 2
        start = time.perf_counter()
        out = self.routes[which](request)
        took = time.perf_counter() - start
        if run >= 2:  # the runs after each route's first: timed
            with self._lock:
                self.times[which].append(took)
                if all(len(t) >= self.TIMED for t in self.times):
                    best = [min(t) for t in self.times]
                    self.winner = self.routes[int(best[1] < best[0])]
        return out


class CallRoutes(_Kept):
    """The routes of :func:`fftconv.convolve` calls, kept by the kernel's content.

    A call resolves its settings and validates its arguments as always; what
    it then decides (the structured route, the plan) depends on nothing but
    the request's shapes and options, the kernel's values, the settings, the
    backend object and the calibrated rates, so it is kept under those.  A
    repeated small call skips planning and pricing: 64² ⊛ 3² went from 310 to
    155 µs.  A kernel past the hashing limit is not kept (its call is long
    anyway).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv._core import settings as _config
    >>> from fftconv._core.request import build_request
    >>> calls, settings = CallRoutes(), _config.resolve()
    >>> request = build_request(np.ones((8, 8)), np.ones((3, 3)), "same", "constant", 0.0,
    ...                         None, "auto", "propagate", None, flip=False)
    >>> float(calls.run(request, settings)[4, 4]), len(calls)
    (9.0, 1)
    >>> same = request.replace(kernel=np.ones((3, 3)))  # another array, the same values
    >>> float(calls.run(same, settings)[0, 0]), len(calls)
    (4.0, 1)
    """

    def __init__(self, entries: int = 64) -> None:
        super().__init__("convolve routes", entries)

    def run(self, request: Request, settings: _config.Settings) -> np.ndarray:
        """As :func:`fftconv._planning.engine.compute` with ``settings``."""
        return self._find(request, settings, general=False)(request)

    def general(self, request: Request, settings: _config.Settings) -> np.ndarray:
        """As :func:`fftconv._planning.engine.compute_general` (a structured kernel's passes)."""
        return self._find(request, settings, general=True)(request)

    def _find(self, request: Request, settings: _config.Settings, general: bool) -> Callable:
        digest = kernel_digest(request.kernel)
        if digest is None:
            return self._route(request, settings, general)
        backend, threads = load_backend(settings.backend), settings.threads()
        # The backend object itself: a refreshed registry's new one is another key.
        key = (general, digest, request.kernel.shape, request.kernel.dtype.str,
               *_options(request), settings, backend,
               structured.rates(request, settings, threads))
        return self._kept(key, lambda: self._route(request, settings, general))

    def _route(self, request: Request, settings: _config.Settings, general: bool) -> Callable:
        if general:
            return general_route(request, settings)
        return route(request, settings, passes=functools.partial(self.general, settings=settings))


CALLS = CallRoutes()
