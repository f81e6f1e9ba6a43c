"""One computation of a key at a time: threads asking for a key being made wait for it.

A Dask worker starts its first tasks on all its threads at once, and each
task asks for the same kernel spectrum.  Without this each thread would
compute it, and a 32-thread worker would hold 32 copies for a moment (20 MiB
each at a 2250² tile) and do the transform 32 times.

The caches using it (:class:`fftconv._spectra.SpectrumCache`,
:class:`fftconv._workspace.Idle`) call :meth:`Running.claim` and
:meth:`Running.finish` under their own lock.

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


def waited(future: Future) -> tuple[bool, Any]:
    """``(True, value)`` once another thread has made it, ``(False, None)`` if that failed.

    After a failure the waiter tries again (and may make the value itself):
    the maker has its error, and a failure like MemoryError may not recur.
    """
    if future.exception() is None:
        return True, future.result()
    return False, None


def make(running: Running, lock, key: Hashable, build: Callable[[], Any],
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
