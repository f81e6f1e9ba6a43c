"""``--resume``: a zarr output written chunk by chunk into a working store that survives.

A run with ``--resume`` writes its chunks straight into ``.OUTPUT.resume/``
beside the target, and after each chunk is durable (its file synced) appends
its index to a record there.  Ctrl-C, SIGTERM (a batch system's time limit),
a killed worker or a full disk stop the run and keep the store; the same
command again finds it, checks that it is the same job (input, kernel and
every option that changes a value), computes only the chunks the record does
not list, and moves the result into place.  A store of another job is refused
in one line.  Without ``--resume`` nothing changes: a failed run leaves
nothing behind.  Zarr outputs only (``.npy`` and TIFF outputs are single files
that a run writes in place whole); an OME-Zarr pyramid is written at its full
resolution only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np

from fftconv._cli.progress import STORE_PREFIX
from fftconv._infra.files import move_new, move_replacing, write_atomically
from fftconv._io.formats import InputError
from fftconv._io.mapped import on_a_grid
from fftconv._io.urls import is_remote
from fftconv._io.write import zarr_output
from fftconv._io.zarr_direct import ChunkWriter

RECORD = "fftconv-job.json"
DONE = "fftconv-done.txt"


def working_store(output: Path) -> Path:
    """Where a resumable run of ``output`` keeps its work: beside it, hidden."""
    return output.with_name(f".{output.name}.resume")


def job(args, image, kernel: np.ndarray, lazy) -> dict:
    """What makes two runs the same job: the input, the kernel's values and every option
    that changes the result or its layout."""
    remote = is_remote(args.input)
    source = args.input if remote else Path(args.input)
    return {
        "input": str(source if remote else source.resolve()),
        "input_modified": None if remote else source.stat().st_mtime_ns,
        "input_shape": list(image.shape), "input_dtype": str(image.dtype),
        "kernel": args.kernel, "kernel_sha256": hashlib.sha256(
            np.ascontiguousarray(kernel).tobytes()).hexdigest(),
        "kernel_shape": list(kernel.shape), "kernel_dtype": str(kernel.dtype),
        **{name: _plain(getattr(args, name)) for name in (
            "command", "mode", "boundary", "cval", "axes", "nan_policy", "dtype", "method",
            "normalize", "output_chunks", "shards", "compression", "ngff_version")},
        "output_shape": list(lazy.shape), "output_chunks_computed": [list(c) for c in lazy.chunks],
    }


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _changed(saved: dict, wanted: dict) -> str:
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key) != wanted.get(key):
            return f"{key} was {saved.get(key)!r}, is {wanted.get(key)!r}"
    return ""


def _done(work: Path) -> set[tuple[int, ...]]:
    try:
        text = (work / DONE).read_text()
    except FileNotFoundError:
        return set()
    found = set()
    for line in text.splitlines():
        if line.strip():  # a line cut by a crash is not complete: its chunk is redone
            try:
                found.add(tuple(int(n) for n in line.split(",")))
            except ValueError:
                continue
    return found


class ChunkRecord:
    """Writes one block as its chunk, makes it durable, then records it (by path: it
    pickles to worker processes)."""

    def __init__(self, target, work: Path, block_shape: tuple[int, ...]) -> None:
        self.target, self.done, self.block_shape = target, str(work / DONE), block_shape

    def __call__(self, block: np.ndarray, index: tuple[int, ...]) -> int:
        region = tuple(slice(i * n, i * n + size)
                       for i, n, size in zip(index, self.block_shape, block.shape))
        self.target[region] = block
        _sync()
        fd = os.open(self.done, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (",".join(map(str, index)) + "\n").encode())  # one write: atomic
            os.fsync(fd)
        finally:
            os.close(fd)
        return 1


_sync_lock = threading.Lock()


def _sync() -> None:
    """Flush written files to disk, the chunk just written among them: the record then
    never lists a chunk a crash could lose."""
    if hasattr(os, "sync"):
        with _sync_lock:
            os.sync()


def run(args, image, kernel, lazy, output: Path, names, ome, compute: dict, progress) -> str:
    """Write ``lazy`` to ``output`` resumably; returns what the closing line says of it."""
    import dask

    work = working_store(output)
    wanted = job(args, image, kernel, lazy)
    if ome is not None and len(ome["datasets"]) > 1:
        print(f"{output}: --resume writes the full resolution only", flush=True)
        ome = {**ome, "datasets": ome["datasets"][:1]}
    if work.exists():
        try:
            saved = json.loads((work / RECORD).read_text())
        except (OSError, ValueError):
            saved = {}
        change = _changed(saved, wanted)
        if change:
            raise InputError(f"{work} holds the work of another job ({change}); remove it, "
                             "or rerun the job it was")
        blocks, target = _reopen(work, lazy, names, ome, args)
    else:
        work.mkdir()
        blocks, target = zarr_output(work / "array", lazy, dimension_names=names, ome=ome,
                                     chunks=args.output_chunks, shards=args.shards,
                                     compression=args.compression)
        write_atomically(work / RECORD, json.dumps(wanted, indent=1))
    done = _done(work)
    indices = [index for index in np.ndindex(*blocks.numblocks) if index not in done]
    print(f"{output}: {len(done)} of {len(done) + len(indices)} chunks were written by an "
          f"earlier run; computing {len(indices)}" if done else
          f"{output}: resumable; its work is kept in {work} until it is complete",
          flush=True)
    record = ChunkRecord(target, work, tuple(c[0] for c in blocks.chunks))
    delayed = blocks.to_delayed()
    # Named as dask.array.store's writes are, so that progress counts them as chunks.
    token = dask.base.tokenize(wanted, sorted(done))
    tasks = [dask.delayed(record, pure=False)(
        delayed[index], index, dask_key_name=f"{STORE_PREFIX}-resume-{token}-{n}")
        for n, index in enumerate(indices)]
    with progress(len(indices)):
        dask.compute(*tasks, **compute)
    (move_replacing if args.overwrite else move_new)(work / "array", output)
    shutil.rmtree(work, ignore_errors=True)
    return f"{len(indices)} chunks computed" + (f", {len(done)} from an earlier run"
                                                if done else "")


def _reopen(work: Path, lazy, names, ome, args):
    """The blocks and the target of the work kept in ``work``."""
    import zarr

    node = zarr.open(str(work / "array"), mode="r+")
    array = node if isinstance(node, zarr.Array) else node[ome["datasets"][0]["path"]]
    stored = array.shards or array.chunks
    return on_a_grid(lazy.rechunk(stored)), ChunkWriter.of(array)
