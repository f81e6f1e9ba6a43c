"""Store targets that write nothing once their run has failed and its folder is gone.

zarr's local store creates the folders a chunk needs.  When one task of a
write fails, ``dask`` raises at once while the tasks already running go on,
under the threaded scheduler as on a cluster; ``write_image`` then removes its
temporary folder, and a chunk written through zarr after that made the folder
again, left beside the target for good.  A :class:`Guarded` target writes only
while its :class:`Run` is live: :meth:`Run.abandon` waits for the writes in
flight in this process and refuses later ones, and a task in another process
(a worker, which holds a copy of the run) writes only while the folder exists.
"""

from __future__ import annotations

import os
import threading
from typing import Any


class RunAbandoned(RuntimeError):
    """A chunk arrived after its write had failed and been cleaned up; it is dropped."""


class Run:
    """The state of one write: live until :meth:`abandon`.

    Examples
    --------
    >>> run = Run()
    >>> with run.writing():
    ...     pass
    >>> run.abandon()
    >>> try:
    ...     with run.writing():
    ...         pass
    ... except RunAbandoned as err:
    ...     print(err)
    this write was abandoned
    """

    def __init__(self) -> None:
        self._done = threading.Condition()
        self._writing = 0
        self._abandoned = False

    def writing(self) -> _Writing:
        """A context in which one chunk is written; raises if the run was abandoned."""
        return _Writing(self)

    def abandon(self) -> None:
        """Refuse every later write, and wait for those in flight in this process."""
        with self._done:
            self._abandoned = True
            self._done.wait_for(lambda: self._writing == 0)

    def __getstate__(self) -> dict:
        # Another process's copy starts live: the folder check guards it there.
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


class _Writing:
    def __init__(self, run: Run) -> None:
        self.run = run

    def __enter__(self) -> None:
        with self.run._done:
            if self.run._abandoned:
                raise RunAbandoned("this write was abandoned")
            self.run._writing += 1

    def __exit__(self, *exc: object) -> None:
        with self.run._done:
            self.run._writing -= 1
            self.run._done.notify_all()


class Guarded:
    """``target`` (a ``da.store`` target) written only while ``run`` is live and
    ``folder`` exists.

    In another process the folder test and the write are two steps: a folder
    removed between them is made again by a store that makes missing folders
    (zarr's own writes; :mod:`fftconv._io.zarr_direct`'s make none).
    """

    def __init__(self, target: Any, folder: str | os.PathLike, run: Run) -> None:
        self.target, self.folder, self.run = target, os.fspath(folder), run

    @property
    def shape(self) -> tuple[int, ...]:
        return self.target.shape

    @property
    def dtype(self):
        return self.target.dtype

    @property
    def ndim(self) -> int:
        return len(self.target.shape)

    def __setitem__(self, index, value) -> None:
        with self.run.writing():
            if not os.path.isdir(self.folder):
                raise RunAbandoned(f"{self.folder} is gone: this write was abandoned")
            self.target[index] = value
