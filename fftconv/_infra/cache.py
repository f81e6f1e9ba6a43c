"""The one cache class: a lock, bounds, fork safety, and one place that empties them all.

Every cache in fftconv (planned routes, kernel spectra, estimates, structure
found in kernels, autotune winners, pyFFTW plans, the Dask path's per-thread
buffers, parsed files) is a :class:`Cache`.  Each one

* is safe under threads: one lock guards every read and write;
* is bounded: at most ``entries`` values and ``max_bytes`` bytes (as
  ``sizeof`` counts them), the least recently used going first;
* computes a missing value once (:meth:`Cache.get_or_make`): threads that ask
  for a key being made wait for the thread making it (:mod:`.once`);
* can drop values unused for ``idle_seconds`` (a daemon timer sweeps it while
  it holds anything), for what serves one computation in a process that
  outlives it (a Dask worker);
* gets a fresh lock in a forked child (:mod:`.forks`): a child forked while a
  parent's thread held it would otherwise wait for ever;
* is registered, weakly, so that :func:`clear_caches` (``fftconv.clear_caches``)
  empties every cache in the process.

Examples
--------
>>> squares = Cache("squares", entries=2)
>>> squares.get_or_make(3, lambda: 9), squares.get_or_make(3, lambda: -1)
(9, 9)
>>> squares.put(4, 16); squares.put(5, 25)  # 3 is the least recently used: it goes
>>> squares.get(3), squares.get(5), len(squares)
(None, 25, 2)
>>> clear_caches(); len(squares)
0
"""

from __future__ import annotations

import collections
import functools
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from fftconv._infra import forks, once

_ALL: weakref.WeakSet = weakref.WeakSet()


def _no_size(value: Any) -> int:
    return 0


class Cache:
    """A bounded, thread-safe, fork-safe LRU map, emptied by :func:`clear_caches`.

    Parameters
    ----------
    name : str
        What it holds, for :func:`caches` and error messages.
    entries : int, optional
        Most values kept; ``None`` for no bound, ``0`` or less keeps nothing.
    max_bytes : int, optional
        Most bytes kept, as ``sizeof`` counts them.
    sizeof : callable, optional
        A value's size in bytes (default 0: only ``entries`` bounds the cache).
    max_item_bytes : int, optional
        A value larger than this is returned but not kept.
    idle_seconds : float, optional
        Values unused this long are dropped.
    on_drop : callable, optional
        Called (under the lock) with each value that leaves the cache, to
        release what it holds (a file handle).
    """

    def __init__(self, name: str, *, entries: int | None = None, max_bytes: int | None = None,
                 sizeof: Callable[[Any], int] = _no_size, max_item_bytes: int | None = None,
                 idle_seconds: float | None = None,
                 on_drop: Callable[[Any], None] | None = None) -> None:
        self.name = name
        self.entries = entries
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.idle_seconds = idle_seconds
        self._sizeof = sizeof
        self._on_drop = on_drop
        # key -> [value, bytes, last use]; in LRU order (least recently used first)
        self._items: collections.OrderedDict[Hashable, list] = collections.OrderedDict()
        self._bytes = 0
        self._after_fork()
        forks.renewed(self)
        _ALL.add(self)

    def _after_fork(self) -> None:
        # A forked child inherits the lock as it was, the keys being made by threads it
        # does not have, and the timer's record but not its thread.
        self._lock = threading.Lock()
        self._running = once.Running()
        self._timer: threading.Timer | None = None

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def values(self) -> list:
        """The values kept now, least recently used first (a snapshot)."""
        with self._lock:
            return [entry[0] for entry in self._items.values()]

    @property
    def nbytes(self) -> int:
        """The bytes held, as ``sizeof`` counts them."""
        return self._bytes

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value under ``key`` (now the most recently used), else ``default``."""
        with self._lock:  # _found, inlined: this runs on every call of a Convolver
            entry = self._items.get(key)
            if entry is None:
                return default
            self._items.move_to_end(key)
            if self.idle_seconds is not None:
                entry[2] = time.monotonic()
            return entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` (unless it is over ``max_item_bytes``)."""
        with self._lock:
            self._keep(key, value)

    def get_or_make(self, key: Hashable, make: Callable[[], Any],
                    fits: Callable[[Any], bool] | None = None) -> Any:
        """The value under ``key``; one thread runs ``make()`` when it is missing.

        Threads asking while another makes it wait for that one.  A kept value
        that ``fits`` refuses is dropped and made again.
        """
        value = self.get(key, once.MISSING)  # the common case, without compute-once
        if value is not once.MISSING and (fits is None or fits(value)):
            return value

        def found():  # under the lock
            value = self._found(key)
            if value is not once.MISSING and fits is not None and not fits(value):
                self._drop(key)
                return once.MISSING
            return value

        return once.get(self._running, self._lock, key, found, make,
                        functools.partial(self._keep, key), fits or _always)

    def resize(self, entries: int | None) -> None:
        """Bound the cache at ``entries`` values from now on (the least recently used go)."""
        with self._lock:
            self.entries = entries
            while self._items and entries is not None and len(self._items) > max(entries, 0):
                self._drop(next(iter(self._items)))

    def pop(self, key: Hashable) -> None:
        """Forget ``key`` (nothing when it is not kept)."""
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        with self._lock:
            for key in list(self._items):
                self._drop(key)

    def _found(self, key: Hashable) -> Any:
        entry = self._items.get(key)
        if entry is None:
            return once.MISSING
        self._items.move_to_end(key)
        if self.idle_seconds is not None:
            entry[2] = time.monotonic()
        return entry[0]

    def _keep(self, key: Hashable, value: Any) -> None:
        """Store under the lock, then evict down to the bounds."""
        if self.entries is not None and self.entries <= 0:
            return
        size = self._sizeof(value)
        if self.max_item_bytes is not None and size > self.max_item_bytes:
            return
        self._drop(key, keeping=value)
        self._items[key] = [value, size, time.monotonic()]
        self._bytes += size
        while self._items and (
                (self.entries is not None and len(self._items) > self.entries)
                or (self.max_bytes is not None and self._bytes > self.max_bytes)):
            self._drop(next(iter(self._items)))
        if self.idle_seconds is not None:
            self._schedule()

    def _drop(self, key: Hashable, keeping: Any = once.MISSING) -> None:
        """Forget ``key`` (lock held); its value is released unless it is ``keeping``."""
        entry = self._items.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]
            if self._on_drop is not None and entry[0] is not keeping:
                self._on_drop(entry[0])

    def _schedule(self, delay: float | None = None) -> None:
        """Start the idle sweep unless one is pending (lock held)."""
        if self._timer is not None:
            return
        self._timer = threading.Timer(self.idle_seconds if delay is None else delay,
                                      self._sweep)
        self._timer.daemon = True
        self._timer.start()

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, e in self._items.items() if now - e[2] >= self.idle_seconds]:
                self._drop(key)
            self._timer = None
            if self._items:  # next when the least recently used one falls idle
                oldest = min(e[2] for e in self._items.values())
                self._schedule(max(oldest + self.idle_seconds - now, 0.01))


def _always(value: Any) -> bool:
    return True


def memoized(name: str, entries: int | None = 256) -> Callable[[Callable], Callable]:
    """A decorator: the function's results kept in a :class:`Cache` by its arguments.

    For pure functions of hashable positional arguments; ``wrapper.cache`` is
    the cache and ``wrapper.cache_clear()`` empties it (as ``functools``' do).

    Examples
    --------
    >>> @memoized("doubles", entries=8)
    ... def double(n):
    ...     return 2 * n
    >>> double(4), len(double.cache)
    (8, 1)
    """
    def decorate(function: Callable) -> Callable:
        cache = Cache(name, entries=entries)

        @functools.wraps(function)
        def wrapper(*args: Any) -> Any:
            return cache.get_or_make(args, lambda: function(*args))

        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper
    return decorate


def caches() -> list[Cache]:
    """Every cache alive in this process, by name."""
    return sorted(_ALL, key=lambda cache: cache.name)


def clear_caches() -> None:
    """Empty every cache fftconv keeps in this process.

    Routes planned for repeated calls, kernel spectra (a Convolver's too),
    kernel structures, planner estimates, autotune winners, FFT plans, the
    Dask path's per-thread buffers and the parsed calibration and config
    files: the next calls compute them again.  Nothing else changes: the
    settings, the calibration on disk and the backends found stay (see
    ``fftconv.refresh_backends`` to look for backends again).

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> _ = fftconv.convolve(np.ones((64, 64)), np.ones((9, 9)))
    >>> fftconv.clear_caches()
    >>> from fftconv._planning import CALLS
    >>> len(CALLS)
    0
    """
    for cache in list(_ALL):
        cache.clear()
