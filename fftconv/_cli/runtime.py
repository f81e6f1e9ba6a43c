"""What a command-line run sets up around its work: the scheduler, malloc, progress, peak RSS."""

from __future__ import annotations

import sys


def scheduler(spec: str | None):
    """``threads`` / ``processes`` / a dask.distributed address; returns compute kwargs."""
    if spec in (None, "threads", "processes", "synchronous"):
        return {"scheduler": spec or "threads"}, None
    from distributed import Client

    client = Client(spec)
    return {}, client


def limit_malloc_arenas() -> None:
    """One glibc malloc arena for this process (Linux; a no-op elsewhere).

    With one arena per thread, the large buffers that tasks free on one thread and
    allocate on another fragment into several arenas.  The 16384² out-of-core
    benchmark peaks at 426-489 MiB that way and at 344-353 MiB with one arena.
    One arena can cost time, as the threads then share its lock: interleaved
    runs on a noisy day gave 7.0-7.3 s against 7.9-8.3 s, and another set
    6.6-7.7 s against 6.6-8.5 s.  The command line owns its process, so it can
    choose memory; library users can set ``MALLOC_ARENA_MAX=1`` themselves.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux; elsewhere the process peak is reported)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
