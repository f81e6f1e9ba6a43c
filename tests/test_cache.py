"""The one cache class: bounds, threads, forks, and fftconv.clear_caches()."""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import pytest
from conftest import random

import fftconv
from fftconv._infra.cache import Cache, caches, memoized


def test_entries_and_bytes_bound_it_least_recently_used_first():
    cache = Cache("test", entries=3, max_bytes=100, sizeof=len)
    for key in "abc":
        cache.put(key, "x" * 30)
    cache.get("a")  # "b" is now the least recently used
    cache.put("d", "x" * 30)
    assert sorted(cache._items) == ["a", "c", "d"] and cache.nbytes == 90
    cache.put("e", "x" * 50)  # over 100 bytes: the oldest two go
    assert sorted(cache._items) == ["d", "e"] and cache.nbytes == 80


def test_a_value_over_the_item_limit_is_returned_not_kept():
    cache = Cache("test", max_item_bytes=10, sizeof=len)
    assert cache.get_or_make("big", lambda: "x" * 11) == "x" * 11
    assert len(cache) == 0 and cache.get_or_make("small", lambda: "x") == "x" and len(cache) == 1


def test_no_entries_keeps_nothing_and_resize_evicts():
    empty = Cache("test", entries=0)
    assert empty.get_or_make("k", lambda: 1) == 1 and len(empty) == 0
    cache = Cache("test", entries=4)
    for key in range(4):
        cache.put(key, key)
    cache.resize(2)
    assert sorted(cache._items) == [2, 3]


def test_a_value_that_leaves_is_released_once():
    released = []
    cache = Cache("test", entries=1, on_drop=released.append)
    first = ["first"]
    cache.put("a", first)
    cache.put("a", first)  # kept again: not released
    cache.put("b", ["second"])  # "a" evicted
    cache.pop("missing")
    cache.clear()
    assert released == [first, ["second"]]


def test_none_is_a_value_like_any_other():
    calls = []

    @memoized("test none")
    def nothing(n):
        calls.append(n)

    assert nothing(1) is None and nothing(1) is None and calls == [1]


def test_threads_evicting_while_others_read_never_fail():
    """The planner's estimates were an unlocked OrderedDict: an eviction between ``get`` and
    ``move_to_end`` raised KeyError under threads.  Every cache is locked now."""
    cache = Cache("test", entries=4)
    errors = []

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for key in rng.integers(0, 8, 2000):
                cache.get_or_make(int(key), lambda key=key: int(key))
                cache.get(int(key))
        except Exception as err:  # pragma: no cover - the failure being tested
            errors.append(err)

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors and len(cache) <= 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_uses_a_cache_whose_lock_the_parent_held():
    from conftest import child_finishes

    cache = Cache("test", entries=2)
    cache.put("kept", 1)
    with cache._lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork + threads
        pid = os.fork()
        if pid == 0:
            try:
                os._exit(0 if cache.get_or_make("new", lambda: 2) == 2 else 1)
            finally:
                os._exit(2)
    child_finishes(pid, 10)


def test_clear_caches_empties_every_cache(rng):
    """After a mix of calls (structured and general kernels, a Convolver, autotune, the Dask
    path), every cache holds something; after ``fftconv.clear_caches()`` none does."""
    da = pytest.importorskip("dask.array")
    x = random(rng, (96, 80), "float32")
    convolver = fftconv.Convolver(random(rng, (9, 9), "float32"))
    convolver(x)
    fftconv.convolve(x, np.outer(np.hanning(7), np.hanning(7)).astype(np.float32))
    fftconv.convolve(x, random(rng, (31, 31), "float32"), method="fft")
    with fftconv.config.set(autotune=True):
        fftconv.convolve(x, random(rng, (15, 15), "float32"))
    fftconv.convolve(da.from_array(x, chunks=48), random(rng, (5, 5), "float32")).compute()
    names = {cache.name for cache in caches() if len(cache)}
    assert {"convolve routes", "Convolver routes", "kernel structures", "planner estimates",
            "autotune winners", "shared kernel spectra"} <= names
    fftconv.clear_caches()
    assert [cache.name for cache in caches() if len(cache)] == []
    np.testing.assert_allclose(convolver(x), fftconv.convolve(x, convolver.kernel), atol=1e-5)


def test_the_shared_spectrum_cache_follows_the_setting_without_rewrites(rng):
    """``default_spectra`` set the shared cache's bound on every call; it resizes only when
    the setting changes, and a smaller bound evicts at once."""
    from fftconv._methods.spectra import SHARED

    x = random(rng, (64, 64), "float32")
    for size in (17, 19, 21):
        fftconv.convolve(x, random(rng, (size, size), "float32"), method="fft")
    assert len(SHARED) == 3
    with fftconv.config.set(spectrum_cache=1):
        fftconv.convolve(x, random(rng, (23, 23), "float32"), method="fft")
        assert len(SHARED) == 1 and SHARED.entries == 1
    fftconv.convolve(x, random(rng, (25, 25), "float32"), method="fft")
    assert SHARED.entries == fftconv.config.get("spectrum_cache")
