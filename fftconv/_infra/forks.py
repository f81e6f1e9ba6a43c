"""Locks that a forked child gets fresh, not as the parent's threads held them.

A child forked while one of the parent's threads held a lock inherits it held,
with no thread left to release it: the child's first call waiting on it waits
for ever.  These locks guard caches (and the backend registry's loading), so
whatever a parent's thread was doing under one is simply not seen by the child,
which computes or loads it again.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable


def in_child(renew: Callable[[], None]) -> None:
    """Run ``renew`` in every child forked from now on (nothing where there is no fork)."""
    if hasattr(os, "register_at_fork"):  # not on Windows
        os.register_at_fork(after_in_child=renew)


def module_lock(namespace: dict, name: str = "_lock") -> threading.Lock:
    """A lock for ``namespace[name]``, that a forked child replaces by a new one.

    Examples
    --------
    >>> _lock = module_lock(globals())
    >>> with _lock:
    ...     pass
    """
    in_child(lambda: namespace.__setitem__(name, threading.Lock()))
    return threading.Lock()


_RENEWED: weakref.WeakSet = weakref.WeakSet()


def renewed(owner) -> None:
    """Have ``owner._after_fork()`` run in every child forked while ``owner`` lives.

    For objects with locks of their own (caches made per Convolver): held weakly,
    so that registering one does not keep it alive, as ``os.register_at_fork``
    would.
    """
    _RENEWED.add(owner)


def _renew_owners() -> None:
    for owner in list(_RENEWED):
        owner._after_fork()


in_child(_renew_owners)
