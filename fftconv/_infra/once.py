"""One computation of a key at a time: threads asking for a key being made wait for it.

A Dask worker starts its first tasks on all its threads at once, and each
task asks for the same kernel spectrum.  Without this each thread would
compute it, and a 32-thread worker would hold 32 copies for a moment (20 MiB
each at a 2250² tile) and do the transform 32 times.

Every :class:`~fftconv._infra.cache.Cache` keeps a :class:`Running` and calls
:func:`get` with its own lock, lookup and store (``Cache.get_or_make``).

Examples
--------
>>> running = Running()
>>> running.claim("k") is None  # nobody makes "k": this thread does
True
>>> waiting = running.claim("k")  # another thread gets the future to wait on
>>> running.finish("k").set_result(42)
>>> waiting.result()
42
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any


class Running:
    """The keys being made now, each with the future its waiters wait on."""

    def __init__(self) -> None:
        self._futures: dict[Hashable, Future] = {}

    def claim(self, key: Hashable) -> Future | None:
        """None when the caller is to make ``key`` (and then :meth:`finish` it), else its future."""
        future = self._futures.get(key)
        if future is None:
            self._futures[key] = Future()
        return future

    def finish(self, key: Hashable) -> Future:
        """The future of ``key``, no longer running: the maker sets its result or error."""
        return self._futures.pop(key)


MISSING = object()  # what a cache's lookup returns when it has no value for the key


def get(running: Running, lock, key: Hashable, found: Callable[[], Any],
        build: Callable[[], Any], keep: Callable[[Any], None],
        fits: Callable[[Any], bool] = lambda value: True) -> Any:
    """The value of ``key``: ``found()`` has it, or one thread makes it and the others wait.

    ``found`` (the cache's lookup, or :data:`MISSING`) and ``keep`` (storing a
    made value) run under ``lock``; ``build`` runs outside it.  A waiter whose
    maker failed tries again, and may make the value itself: the maker has its
    error, and a failure like MemoryError may not recur.  A made value that
    ``fits`` refuses is looked up, and replaced, again.
    """
    while True:
        with lock:
            value = found()
            if value is not MISSING:
                return value
            future = running.claim(key)
        if future is None:
            return _make(running, lock, key, build, keep)
        if future.exception() is None and fits(future.result()):
            return future.result()


def _make(running: Running, lock, key: Hashable, build: Callable[[], Any],
          keep: Callable[[Any], None]) -> Any:
    """Run ``build()`` as the claimant of ``key``; ``keep(value)`` runs under ``lock``.

    Whatever fails, ``key`` is finished, so no waiter waits for ever.
    """
    future = None
    try:
        value = build()
        with lock:
            try:
                keep(value)
            finally:
                future = running.finish(key)
    except BaseException as err:
        if future is None:
            with lock:
                future = running.finish(key)
        future.set_exception(err)
        raise
    future.set_result(value)
    return value
