"""Progress of a command-line run: chunks written out of the total, the rate and the ETA.

On a terminal one line is redrawn in place; elsewhere (a batch system's log)
a line is written every few seconds, and one at the end.  On the local
schedulers a dask callback counts the chunk writes; on a dask.distributed
cluster the scheduler's counts are polled, and the dashboard's address is
printed first.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import TextIO

# A chunk write's task: what ``dask.array.store`` names the tasks that store a block.
STORE_PREFIX = "store-map"


class Reporter:
    """Writes ``done/total`` lines to ``stream``: redrawn on a terminal, else every ``every`` s.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> report = Reporter(out, terminal=False, every=0.0)
    >>> report.update(3, 12)
    >>> out.getvalue().startswith("fftconv: 3/12 chunks written (25%), ")
    True
    """

    def __init__(self, stream: TextIO, terminal: bool, every: float = 5.0) -> None:
        self.stream, self.terminal, self.every = stream, terminal, every
        self.start = time.perf_counter()
        self.last = -1e9
        self.shown = (0, 0)
        self.ended = False

    def update(self, done: int, total: int, final: bool = False) -> None:
        now = time.perf_counter()
        if self.ended or (not final and now - self.last < (0.2 if self.terminal
                                                            else self.every)):
            return
        self.last, self.shown, self.ended = now, (done, total), final
        text = self._line(done, total, now - self.start)
        if self.terminal:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        done, total = self.shown
        if total:
            self.update(done, total, final=True)

    @staticmethod
    def _line(done: int, total: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else float("inf")
        eta = _duration(left) if left != float("inf") else "unknown"
        percent = 100 * done / total if total else 100.0
        return (f"fftconv: {done}/{total} chunks written ({percent:.0f}%), "
                f"{rate:.1f} chunks/s, {_duration(elapsed)} elapsed, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _is_store(key) -> bool:
    """Whether ``key`` writes a chunk: a store task, or one that dask fused into it
    (``fftconv-store-map-...``), not the computation's closing ``finalize`` task."""
    name = key[0] if isinstance(key, tuple) else key
    return isinstance(name, str) and STORE_PREFIX in name and "finalize" not in name


def _local(reporter: Reporter):
    """A dask callback that reports each chunk written by the local schedulers."""
    from dask.callbacks import Callback

    class ChunkWrites(Callback):
        def _start_state(self, dsk, state) -> None:
            self.total = sum(1 for key in dsk if _is_store(key)) or len(dsk)
            self.counted = any(_is_store(key) for key in dsk)
            self.done = 0
            self.lock = threading.Lock()

        def _posttask(self, key, result, dsk, state, worker_id) -> None:
            if self.counted and not _is_store(key):
                return
            with self.lock:
                self.done += 1
                reporter.update(self.done, self.total, final=self.done == self.total)

    return ChunkWrites()


@contextlib.contextmanager
def _distributed(reporter: Reporter, client, stream: TextIO, chunks: int):
    """Poll the cluster's counts of chunk writes while the block runs.

    The scheduler forgets a computation's tasks once it returns, so the closing
    line counts what was seen running, and at least ``chunks``.
    """
    print(f"fftconv: dask.distributed dashboard: {client.dashboard_link}", file=stream,
          flush=True)

    def counts(dask_scheduler=None) -> tuple[int, int]:
        prefix = dask_scheduler.task_prefixes.get(STORE_PREFIX)
        states = dict(prefix.states) if prefix is not None else {}
        finished = sum(states.get(s, 0) for s in ("memory", "released", "forgotten"))
        return finished, sum(states.values())

    base_done, base_total = client.run_on_scheduler(counts)
    seen = [chunks]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.5 if reporter.terminal else reporter.every):
            with contextlib.suppress(Exception):  # a closing cluster: nothing more to show
                done, total = client.run_on_scheduler(counts)
                if total > base_total:
                    seen[0] = max(seen[0], total - base_total)
                    reporter.update(done - base_done, seen[0])

    thread = threading.Thread(target=poll, daemon=True, name="fftconv-progress")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    reporter.update(seen[0], seen[0], final=True)  # only when the block completed


def progress(client, wanted: bool | None, chunks: int, stream: TextIO | None = None):
    """The context that reports progress: ``wanted`` None means on a terminal only;
    ``chunks``: the output's chunk count (a pyramid's coarser levels add theirs)."""
    stream = stream or sys.stderr
    terminal = stream.isatty()
    if wanted is False or (wanted is None and not terminal):
        return contextlib.nullcontext()
    reporter = Reporter(stream, terminal)
    if client is not None:
        return _distributed(reporter, client, stream, chunks)
    return _Local(_local(reporter), reporter)


class _Local:
    """The callback in effect, and dask's low-level task fusion off: fused, a small
    graph's chunk writes became one task with its closing one, and went uncounted."""

    def __init__(self, callback, reporter: Reporter) -> None:
        self.callback, self.reporter = callback, reporter

    def __enter__(self):
        import dask

        self.unfused = dask.config.set({"optimization.fuse.active": False})  # set now
        self.callback.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.callback.__exit__(*exc)
        self.unfused.__exit__(*exc)
        if exc[0] is None:
            self.reporter.finish()
