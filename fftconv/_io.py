"""Out-of-core input and output for the command line, by file extension.

Inputs open lazily as dask arrays: ``.zarr`` (zarr), ``.tif``/``.tiff`` (tifffile's
zarr store: tiled and large TIFFs are read tile by tile), ``.npy`` (memory
mapped).  Outputs are written from the graph to a temporary path beside the
target and moved into place only when complete, so an interrupted or failed
run never leaves a half-written file at the target, and the input is never
opened for writing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

FORMATS = (".zarr", ".npy", ".tif", ".tiff")
KERNEL_SPEC = re.compile(r"^(gaussian|disk|box):(\w+)=([0-9.eE+-]+)$")


class InputError(ValueError):
    """A command-line input, kernel or output that cannot be used (exit status 2)."""


def _format(path: Path, role: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{role} {str(path)!r}: unknown format {suffix or '(none)'!r}; "
                         f"use one of {', '.join(FORMATS)}")
    return ".tif" if suffix == ".tiff" else suffix


def _zarr_chunks(path: Path, chunks):
    """The store's own chunks for ``"auto"`` when they hold at least 4 MiB.

    Reading a chunk is then one decode, and the halo strips can be re-read
    straight from the store (see ``fftconv._dask``); dask's ``"auto"`` would
    merge them into 128 MiB blocks, far more working memory per task.
    """
    if chunks != "auto":
        return chunks
    import zarr

    native = zarr.open_array(str(path), mode="r")
    size = int(np.prod(native.chunks)) * native.dtype.itemsize
    return native.chunks if size >= 4 * 2**20 else "auto"


def open_image(path: str | os.PathLike, chunks="auto"):
    """The image at ``path`` as a lazy dask array (nothing is read yet)."""
    import dask.array as da

    path = Path(path)
    kind = _format(path, "input")
    if not path.exists():
        raise InputError(f"input {str(path)!r} does not exist")
    try:
        if kind == ".zarr":
            return da.from_zarr(str(path), chunks=_zarr_chunks(path, chunks))
        if kind == ".npy":
            return da.from_array(np.load(path, mmap_mode="r"), chunks=chunks)
        import tifffile
        import zarr

        store = tifffile.imread(str(path), aszarr=True)
        return da.from_zarr(zarr.open(store, mode="r"), chunks=chunks)
    except InputError:
        raise
    except Exception as err:  # any reader's own error: the file is unreadable
        raise InputError(f"input {str(path)!r} could not be read: {err}") from None


def _gaussian(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(4 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    kernel = np.outer(g, g)
    return (kernel / kernel.sum()).astype(np.float32)


def _disk(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    kernel = (yy**2 + xx**2 <= radius**2).astype(np.float64)
    return (kernel / kernel.sum()).astype(np.float32)


def _box(size: float) -> np.ndarray:
    n = int(size)
    if n != size:
        raise InputError(f"kernel box:size={size} needs an integer size")
    return np.full((n, n), 1.0 / (n * n), dtype=np.float32)


NAMED = {"gaussian": ("sigma", _gaussian), "disk": ("radius", _disk), "box": ("size", _box)}


def load_kernel(spec: str) -> np.ndarray:
    """A ``.npy`` file, or ``gaussian:sigma=S``, ``disk:radius=R``, ``box:size=S`` (2-D)."""
    match = KERNEL_SPEC.match(spec)
    if match:
        name, parameter, value = match.groups()
        expected, make = NAMED[name]
        if parameter != expected:
            raise InputError(f"kernel {spec!r}: {name} takes {expected}=..., not {parameter}=")
        number = float(value)
        if not np.isfinite(number) or number <= 0:
            raise InputError(f"kernel {spec!r}: {expected} must be a positive number")
        return make(number)
    if ":" in spec and not spec.endswith(".npy"):
        raise InputError(f"kernel {spec!r} is neither a .npy file nor one of "
                         "gaussian:sigma=S, disk:radius=R, box:size=S")
    path = Path(spec)
    if not path.exists():
        raise InputError(f"kernel {spec!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:
        raise InputError(f"kernel {spec!r} could not be read: {err}") from None


def check_output(path: str | os.PathLike, overwrite: bool, inputs=()) -> Path:
    path = Path(path)
    _format(path, "output")
    if any(path.resolve() == Path(p).resolve() for p in inputs):
        raise InputError(f"output {str(path)!r} is also an input; choose another path")
    if path.exists() and not overwrite:
        raise InputError(f"output {str(path)!r} exists; pass --overwrite to replace it")
    if not path.parent.exists():
        raise InputError(f"output directory {str(path.parent)!r} does not exist")
    return path


def _replace(tmp: Path, path: Path) -> None:
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        os.replace(tmp, path)


def output_codec():
    """Blosc-zstd level 1 with byte shuffle, for zarr outputs.

    Convolved images are smooth and dense: zarr's default (zstd level 3) spends
    155 ms encoding a 2048² float32 chunk of one, more than its FFT; byte
    shuffle + zstd level 1 takes 41 ms and compresses it better (2.2× vs 2.0×).
    """
    import zarr

    return zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")


def write_image(array, path: str | os.PathLike, **compute) -> Path:
    """Write the dask array ``array`` to ``path`` atomically (temporary path, then rename).

    Every format is written block by block from the graph, so an output larger
    than memory is fine: ``.zarr`` compressed (:func:`output_codec`), ``.npy``
    and ``.tif`` uncompressed and contiguous (tifffile's memory-mappable
    layout, BigTIFF past 4 GiB).
    """
    import dask.array as da

    path = Path(path)
    kind = _format(path, "output")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        if kind == ".zarr":
            import zarr

            target = zarr.create_array(str(tmp), shape=array.shape, dtype=array.dtype,
                                       chunks=array.chunksize, compressors=output_codec())
        elif kind == ".npy":
            target = MappedFile.of(np.lib.format.open_memmap(
                tmp, mode="w+", dtype=array.dtype, shape=array.shape))
        else:
            import tifffile

            target = MappedFile.of(tifffile.memmap(tmp, shape=array.shape, dtype=array.dtype))
        da.store(array, target, lock=False, **compute)
        _replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    return path


@dataclasses.dataclass(frozen=True)
class MappedFile:
    """A ``da.store`` target: an array stored raw at ``offset`` in the file at ``path``.

    Each write maps the file in the process that writes.  A ``np.memmap``
    target would be pickled to worker processes (the ``processes`` scheduler,
    dask.distributed) as a copy of its data, and their writes would be lost:
    a ``.npy`` output came out all zeros that way.
    """

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def of(cls, mapped: np.memmap) -> MappedFile:
        """The file ``mapped`` maps (which is closed: writes map it again)."""
        target = cls(str(mapped.filename), int(mapped.offset), mapped.shape, mapped.dtype)
        mapped.flush()  # the header that created it is on disk
        del mapped
        return target

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __setitem__(self, index, value) -> None:
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r+", offset=self.offset,
                           shape=self.shape)
        mapped[index] = value
