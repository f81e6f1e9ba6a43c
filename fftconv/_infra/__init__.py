"""Infrastructure with no knowledge of convolution: threads, fork safety, compute-once, caches.

:mod:`.cache`
    the one cache class (:class:`~.cache.Cache`) and ``clear_caches``;
:mod:`.once`
    one computation of a key at a time, the others waiting;
:mod:`.forks`
    locks that a forked child gets fresh;
:mod:`.threads`
    running work items on a few threads.
"""
