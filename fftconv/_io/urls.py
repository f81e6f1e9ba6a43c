"""Where data lives: local paths, ``file://`` URLs, and fsspec URLs for zarr stores.

``file://`` is a local path, spelled as a URL.  Any other scheme fsspec knows
(``s3://``, ``gs://``, ``az://``, ``https://``, ``memory://``...) opens a zarr
store through zarr's fsspec store: inputs everywhere, outputs where the
store is writable (``https://`` is read-only).  An object store has no
rename, so a remote output is written in place and removed again if the run
fails.  The protocol's own package (``s3fs``, ``gcsfs``, ``aiohttp``...) comes
from the user: fsspec says which one is missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from fftconv._io.formats import InputError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme(path: str | os.PathLike) -> str | None:
    """The URL scheme ``path`` starts with (``"s3"``), or None for a plain path.

    Examples
    --------
    >>> scheme("s3://bucket/image.zarr"), scheme("/data/image.zarr"), scheme(Path("a.zarr"))
    ('s3', None, None)
    """
    if isinstance(path, os.PathLike):
        return None
    found = _SCHEME.match(str(path))
    return found.group(1).lower() if found else None


def is_remote(path) -> bool:
    """Whether ``path`` is a URL of a store reached through fsspec (not ``file://``)."""
    found = scheme(path)
    return found is not None and found != "file"


def local(path):
    """``path`` with a ``file://`` URL made a local path; anything else as it is.

    Examples
    --------
    >>> str(local("file:///data/my%20image.zarr")), local("s3://b/x.zarr")
    ('/data/my image.zarr', 's3://b/x.zarr')
    """
    if scheme(path) == "file":
        parsed = urlparse(str(path))
        if parsed.netloc not in ("", "localhost"):
            raise InputError(f"{path!r}: a file:// URL of another host ({parsed.netloc}) is "
                             "not a local path")
        return Path(unquote(parsed.path))
    return path


def remote_kind(url: str, role: str) -> str:
    """A remote path's format: only zarr stores are read and written remotely."""
    path = urlparse(url).path
    if path.rstrip("/").lower().endswith(".zarr") or ".zarr/" in path.lower():
        return ".zarr"
    raise InputError(f"{role} {url!r}: only zarr stores (.zarr) are read and written "
                     "through URLs; copy other files to a local disk")


def fs_of(url: str):
    """The fsspec file system and the path in it of ``url``."""
    import fsspec

    return fsspec.core.url_to_fs(url)
