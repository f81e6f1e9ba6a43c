"""The Dask graph of a tiled convolution: one task per output block, halos read twice.

Each block's task takes its pieces (:mod:`.pieces`) and the kernel's one
delayed key; when every input chunk is a plain store read, halo strips are cut
from a second read of the chunks (:func:`reread`), so that a chunk is released
as soon as the block that owns it is done.
"""

from __future__ import annotations

import dataclasses
import itertools

import dask
import dask.array as da
import numpy as np

from fftconv._core import settings as _config
from fftconv._io.zarr_direct import chunk_of, layout, read_chunk
from fftconv._tiling.blocks import convolve_block
from fftconv._tiling.pieces import block_plans, chunk_cut, chunk_view, constant_piece, owners


def _task_class():
    """dask's ``Task`` (its graphs since 2024.12), or None for an older dask."""
    try:
        from dask._task_spec import Task
    except ImportError:  # an older dask: its graphs hold plain tuples
        return None
    return Task


def _source_read(graph, key):
    """The task that reads chunk ``key`` from a store (zarr, TIFF, memmap), or None.

    Only plain reads qualify: running one twice costs a read, never a
    recomputation of the user's upstream graph.  Before dask's task-spec graphs
    (2024.12) none is recognised: the halos then come from the one read of each
    chunk, as with ``halo_reads="hold"`` (the same values, more memory held).
    """
    task = _task_class()
    if task is None:
        return None
    from dask.array.core import getter, getter_inline, getter_nofancy

    node = graph.get(key)
    if (isinstance(node, task) and node.func in (getter, getter_inline, getter_nofancy)
            and all(not isinstance(d, tuple) for d in node.dependencies)):
        return node
    return None


def reread(x: da.Array, prefix: str = "fftconv-reread-",
            direct_only: bool = False) -> da.Array | None:
    """A second, independent read of ``x``'s chunks when each is a plain store read.

    Halo strips and boundary edges are cut from this copy, so a chunk of ``x``
    feeds only the one output block that owns it and is released as soon as that
    block is done; without it, every chunk waits for the neighbours that read
    its strips, and dask's ordering holds a row of chunks and more.  The price
    is reading those chunks twice, as the setting ``halo_reads="hold"`` does not
    (16384² float32 in 2048² chunks ⊛ 201², one malloc arena: 5.2-5.4 s at
    463-480 MiB held, 6.4-6.7 s at 353-357 MiB read again; default arenas
    5.1-5.3 s at 550-611 MiB against 6.0-6.1 s at 455-464 MiB; at 32768², in 16
    chunks a row, 21.2 s at 1310 MiB against 28.5 s at 555 MiB).  A zarr chunk
    that can be is decoded straight into its array (:mod:`fftconv._io.zarr_direct`);
    with ``direct_only``, None unless every chunk is.
    """
    from dask.highlevelgraph import HighLevelGraph

    graph = x.__dask_graph__()
    name = prefix + x.name
    tasks = {}
    for index in np.ndindex(*x.numblocks):
        tasks[index] = _source_read(graph, (x.name, *index))
        if tasks[index] is None:
            return None
    layer = _direct_layer(graph, x, tasks, name)
    if layer is None and direct_only:
        return None
    if layer is None:
        layer = {(name, *index): task.substitute({}, key=(name, *index))
                 for index, task in tasks.items()}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x])
    return da.Array(graph, name, x.chunks, meta=x._meta)


def _direct_layer(graph, x: da.Array, tasks: dict, name: str) -> dict | None:
    """Tasks reading ``x``'s chunks with :func:`fftconv._io.zarr_direct.read_chunk`, or None.

    Every task of ``tasks`` (dask getters, from :func:`_source_read`) must read
    exactly one whole chunk of one zarr array that :func:`~fftconv._io.zarr_direct.layout`
    accepts, without a lock.  The new tasks refer to the array as the getters
    do (by key when ``from_zarr`` kept it out of line), so it is not copied
    into each.
    """
    from dask._task_spec import Alias, DataNode, Task, TaskRef

    def value(arg):
        if isinstance(arg, Alias):  # dask 2024.12 refers to the array by an alias
            arg = arg.target if isinstance(arg.target, TaskRef) else TaskRef(arg.target)
        if isinstance(arg, TaskRef):
            try:
                arg = graph[arg.key]
            except KeyError:
                return None
        return arg.value if isinstance(arg, DataNode) else arg

    first = next(iter(tasks.values()))
    array = value(first.args[0]) if first.args else None
    stored = layout(array)
    if stored is None:
        return None
    layer = {}
    for index, task in tasks.items():
        if (len(task.args) != 2 or value(task.args[0]) is not array
                or task.kwargs.get("lock") not in (None, False)):
            return None
        found = chunk_of(value(task.args[1]), stored.chunk_shape, array.shape)
        if found is None:
            return None
        layer[(name, *index)] = Task((name, *index), read_chunk, task.args[0], stored, *found)
    return layer


def assemble(x, k, request, out_chunks, pads, kernel_key, token, method, nan_policy, frozen,
              block=convolve_block):
    """One task per output block, reading the input chunks its region overlaps.

    The pieces come from :func:`block_pieces`.
    """
    from dask.highlevelgraph import HighLevelGraph

    name = "fftconv-" + dask.base.tokenize(x, token, block.__name__, request.axes,
                                           request.windows, request.boundary, request.cval,
                                           request.dtype.str, method, nan_policy, frozen,
                                           out_chunks)
    plans = block_plans(x, k, request, out_chunks, pads)
    halo = "fftconv-halo-" + name.removeprefix("fftconv-")
    pieces = block_pieces(x, plans, halo, request.cval, request.dtype)
    layer = dict(pieces.layer)
    for index, nested in pieces.nested.items():
        layer[(name, *index)] = (block, nested, kernel_key.key, token, request.axes, method,
                                 nan_policy, request.dtype, frozen)
    graph = HighLevelGraph.from_collections(name, layer,
                                            dependencies=[*pieces.dependencies, kernel_key])
    meta = np.empty((0,) * x.ndim, dtype=request.dtype)
    return da.Array(graph, name, tuple(out_chunks), meta=meta)


@dataclasses.dataclass
class BlockPieces:
    """What :func:`block_pieces` builds: the nested pieces per block and their tasks."""

    nested: dict  # block index: nested lists of pieces, as np.block joins them
    layer: dict  # the tasks cutting the strips (keys named ``halo``)
    dependencies: list  # the collections those tasks and the pieces read


def block_pieces(x: da.Array, plans: dict, halo: str, cval=0.0, dtype=None) -> BlockPieces:
    """Per block of ``plans`` (from :func:`block_plans`), the nested pieces of ``x``.

    A chunk enters whole (cut inline, a view) only the block that takes most
    of it; every other block overlapping it gets a copied piece from a small
    task of its own, cut from a second read of the chunk when ``x`` is a plain
    store read (:func:`reread`), so that the chunk is released as soon as its
    owner is done; with the setting ``halo_reads="hold"``, from the one read,
    which then waits for its neighbours.  When every chunk of ``x`` is one
    whole zarr chunk that :mod:`fftconv._io.zarr_direct` decodes directly, the
    first read is such a read too, not ``x``'s own task.  Pieces of the
    constant boundary are ``cval`` broadcast, in ``dtype`` (default ``x``'s).
    """
    owner = owners(plans)
    direct = reread(x, "fftconv-read-", direct_only=True)
    first = x if direct is None else direct
    again = reread(x) if _config.get("halo_reads") == "reread" else None
    source = first.name if again is None else again.name
    dtype = x.dtype if dtype is None else dtype
    layer: dict = {}

    def piece(index, combo, count):
        if any(chunk is None for chunk, _, _ in combo):
            return (constant_piece, tuple(n for _, _, n in combo), cval, dtype)
        chunk = tuple(c for c, _, _ in combo)
        cut = tuple(s for _, s, _ in combo)
        if owner[chunk] == index:
            return (chunk_view, (first.name, *chunk), cut)
        key = (halo, *index, next(count))
        layer[key] = (chunk_cut, (source, *chunk), cut)
        return key

    def nested(index, per_axis, count, prefix=()):
        if len(prefix) == len(per_axis):
            return piece(index, prefix, count)
        return [nested(index, per_axis, count, (*prefix, p)) for p in per_axis[len(prefix)]]

    return BlockPieces({index: nested(index, per_axis, itertools.count())
                        for index, per_axis in plans.items()},
                       layer, [first] if again is None else [first, again])
