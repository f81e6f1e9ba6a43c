"""Routes remembered: a Convolver plans each image shape once, not each call.

Planning a call (settings, calibration rates, the planner's signature, the
kernel's structure) costs about 0.2 ms: more than convolving a 64² patch
with a 3×3 kernel.  A :class:`Routes` keeps what :func:`fftconv._api.route`
decided for each request it has seen, so a Convolver applied to many small
images pays that once per shape.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

import numpy as np

from fftconv import _config
from fftconv._api import plain_route, route
from fftconv._request import Request
from fftconv._spectra import SpectrumCache


def route_key(request: Request, plain: bool) -> tuple:
    """Everything a route depends on besides the image's values.

    The kernel counts by identity: the entry holds the kernel, so no other
    array can take its ``id`` while the entry lives.
    """
    return (plain, id(request.kernel), request.image.shape, request.image.dtype.str,
            request.axes, request.windows, request.mode, request.boundary, request.cval,
            request.dtype.str, request.method)


class Routes:
    """A bounded LRU of routes, called like :func:`fftconv._api.compute`.

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
    >>> from fftconv import _config
    >>> from fftconv._request import build_request
    >>> routes = Routes(_config.resolve())
    >>> request = build_request(np.ones((8, 8)), np.ones((3, 3)), "same", "constant", 0.0,
    ...                         None, "auto", "propagate", None, flip=False)
    >>> float(routes(request)[4, 4]), float(routes(request)[0, 0]), len(routes)
    (9.0, 4.0, 1)
    """

    def __init__(self, settings: _config.Settings, spectra: SpectrumCache | None = None,
                 entries: int = 32) -> None:
        self.settings = settings
        self.spectra = spectra
        self.entries = entries
        self._items: collections.OrderedDict[tuple, tuple[np.ndarray, Callable]] = (
            collections.OrderedDict())
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __call__(self, request: Request) -> np.ndarray:
        return self._find(request, plain=False)(request)

    def plain(self, request: Request) -> np.ndarray:
        """As :func:`fftconv._api.compute_plain` (a structured kernel's passes)."""
        return self._find(request, plain=True)(request)

    def _find(self, request: Request, plain: bool) -> Callable[[Request], np.ndarray]:
        key = route_key(request, plain)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found[1]
        if plain:
            chosen = plain_route(request, self.settings, self.spectra)
        else:
            chosen = route(request, self.settings, self.spectra, passes=self.plain)
        with self._lock:
            self._items[key] = (request.kernel, chosen)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return chosen
