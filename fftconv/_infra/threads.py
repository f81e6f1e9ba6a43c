"""Run tasks on a few threads, each in a copy of the caller's settings context.

``ThreadPoolExecutor`` does not carry :mod:`contextvars` into its threads, so
without this a ``with fftconv.config.set(...)`` block would not reach the
backend calls made from our own worker threads.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_all(work: Callable[[T], object], items: Iterable[T], threads: int) -> None:
    """Call ``work(item)`` for each item on up to ``threads`` threads; re-raise the first error."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, work, item) for item in items]
        for future in futures:
            future.result()
