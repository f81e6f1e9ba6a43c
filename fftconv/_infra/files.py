"""Files written whole or not at all: a temporary sibling, then one rename.

Examples
--------
>>> import pathlib, tempfile
>>> target = pathlib.Path(tempfile.mkdtemp()) / "record.json"
>>> write_atomically(target, '{"format": 1}')
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('{"format": 1}', ['record.json'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, prefix: str = ".fftconv-") -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, then ``os.replace``.

    A reader sees the old file or the new one, never a part; whatever fails
    (a full disk, a permission, a signal) removes the temporary file and
    raises, leaving the old file as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


AT_FDCWD = -100
RENAME_NOREPLACE = 1  # fail when the target exists (a dangling link included)
RENAME_EXCHANGE = 2  # swap source and target, both kept


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """Linux's ``renameat2``: True when done, False where the system or the file system
    has no such call or flag (the caller falls back); any other failure raises OSError."""
    import ctypes
    import errno

    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a C library before glibc 2.28
        return False
    if call(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(target))


def move_new(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, which must not exist: never replace what is there.

    A file or link that appeared at ``target`` since the caller checked (another run
    writing the same output, a dangling link) raises FileExistsError and stays.
    """
    if _renameat2(source, target, RENAME_NOREPLACE):
        return
    if source.is_dir():
        os.mkdir(target)  # FileExistsError when taken; else an empty folder we own
        try:
            os.replace(source, target)  # onto the empty folder
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(target)
            raise
    else:
        try:
            os.link(source, target)  # FileExistsError when taken
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: claim the name, then fill it
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            try:
                os.replace(source, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(target)
                raise
            return
        os.unlink(source)


def move_replacing(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, replacing what is there, atomically: whatever fails,
    or whatever signal arrives, ``target`` is the old one or the new one, never neither.

    The old one (a folder, a file, or a link: the link itself, never what it points to)
    ends at ``source``'s path, for the caller to remove with its temporary folder.
    """
    if not os.path.lexists(target):
        move_new(source, target)
    elif not source.is_dir():
        os.replace(source, target)  # one rename: atomic for a file, or over a link
    elif _renameat2(source, target, RENAME_EXCHANGE):
        return
    else:
        _swap_by_two_renames(source, target)


def _swap_by_two_renames(source: Path, target: Path) -> None:
    """Where no exchange exists: the old moves aside, the new in; restored on any failure."""
    aside = source.with_name(source.name + ".old")
    os.replace(target, aside)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(aside, target)
        raise
    os.replace(aside, source)
