"""Dask arrays (SPEC §2): lazy, equal to the in-memory result for any chunking."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import random
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import assert_matches, reference

import fftconv

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

MODES = ["full", "same", "valid"]
BOUNDARIES = ["constant", "reflect", "mirror", "nearest", "wrap"]
CHUNKINGS = {"uniform": (8, 6), "ragged": ((5, 11, 7), (3, 9, 7)), "smaller-than-halo": (3, 2)}


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("kshape", [(5, 3), (6, 4)], ids=["odd", "even"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_tiled_equals_reference(rng, fn, mode, boundary, kshape, chunking):
    x = random(rng, (23, 19), "float64")
    k = random(rng, kshape, "float64")
    lazy = getattr(fftconv, fn)(da.from_array(x, chunks=CHUNKINGS[chunking]), k, mode,
                                boundary=boundary, cval=0.4)
    assert isinstance(lazy, da.Array)
    expected = reference(x, k, mode, boundary, cval=0.4, correlate=fn == "correlate")
    assert_matches(lazy.compute(), expected, "float64")


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("size", [(5, 3), (6, 4)], ids=["odd", "even"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
def test_window_sum_tiled_equals_reference(rng, mode, boundary, size, chunking):
    """window_sum of a dask array is lazy (SPEC §2): it computed the whole array before."""
    x = random(rng, (23, 19), "float64")
    lazy = fftconv.window_sum(da.from_array(x, chunks=CHUNKINGS[chunking]), size, mode,
                              boundary=boundary, cval=0.4)
    assert isinstance(lazy, da.Array)
    expected = reference(x, np.ones(size), mode, boundary, cval=0.4)
    assert_matches(lazy.compute(), expected, "float64")


def test_window_sum_tiled_keeps_float32_counts_nan_and_axes(rng):
    x = random(rng, (40, 6, 33), "float32")
    x[19, 2, 16] = np.nan
    lazy = fftconv.window_sum(da.from_array(x, chunks=(10, 3, 8)), (3, 5), axes=(0, 2))
    assert lazy.dtype == np.float32 and lazy._meta.dtype == np.float32
    got = lazy.compute()
    assert np.isnan(got).sum() == 15 and np.isnan(got[18:21, 2, 14:19]).all()
    expected = fftconv.window_sum(x, (3, 5), axes=(0, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5, equal_nan=True)
    sums = fftconv.window_sum(da.from_array(x, chunks=(10, 3, 8)), (3, 5), axes=(0, 2),
                              dtype="float64")
    assert sums.dtype == np.float64
    mask = rng.random((90, 70)) < 0.5
    counts = fftconv.window_sum(da.from_array(mask.astype(np.float64), chunks=16), (5, 9),
                                "valid").compute()
    expected = np.lib.stride_tricks.sliding_window_view(mask, (5, 9)).sum(axis=(-1, -2))
    assert np.array_equal(counts, expected)  # integer data: exact across tiles too


def test_window_sum_graph_is_its_own(rng):
    """A window sum and a convolution with ones of the same array never share task names."""
    x = da.from_array(random(rng, (30, 30), "float32"), chunks=10)
    ones = np.ones((3, 3), np.float32)
    summed = fftconv.window_sum(x, 3)
    convolved = fftconv.convolve(x, ones, method="direct")
    assert summed.name != convolved.name
    np.testing.assert_allclose(*da.compute(summed, convolved), rtol=1e-5, atol=1e-5)

    def explode(block):
        raise AssertionError("computed while building the graph")

    fftconv.window_sum(da.map_blocks(explode, da.zeros((50, 50), chunks=10), dtype=float), 7)


# Chunks smaller than the halo make thousands of tiny tasks: one mode and function there.
VJP_GRID = [(fn, mode, "ragged") for fn in ("convolve", "correlate") for mode in MODES] + [
    ("correlate", "same", "smaller-than-halo")]


@pytest.mark.parametrize("kshape", [(5, 3), (6, 4)], ids=["odd", "even"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("fn, mode, chunking", VJP_GRID, ids=["-".join(v) for v in VJP_GRID])
def test_vjp_tiled_equals_in_memory(rng, fn, mode, boundary, kshape, chunking):
    """The adjoints of a dask image are lazy (SPEC §2): they loaded the whole image before."""
    vjp = getattr(fftconv, f"{fn}_vjp")
    x = random(rng, (23, 19), "float64")
    k = random(rng, kshape, "float64")
    c = random(rng, getattr(fftconv, fn)(x, k, mode).shape, "float64")
    lazy = vjp(da.from_array(x, chunks=CHUNKINGS[chunking]), k, c, mode, boundary=boundary)
    assert all(isinstance(g, da.Array) for g in lazy)
    assert lazy[0].chunks == da.from_array(x, chunks=CHUNKINGS[chunking]).chunks
    for got, expected in zip(da.compute(*lazy), vjp(x, k, c, mode, boundary=boundary)):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("case", ["per-slice kernel", "cnn layer", "float32", "complex64",
                                  "kernel larger than the image", "dask cotangent only",
                                  "computed image", "uint16 image"])
def test_vjp_tiled_layouts_and_dtypes(rng, case):
    mode, axes, boundary, image_chunks = "same", None, "reflect", 4
    x, k = random(rng, (20, 17), "float64"), random(rng, (4, 5), "float64")
    if case == "per-slice kernel":
        x, k, axes = random(rng, (8, 7, 3), "float64"), random(rng, (3, 2), "float64"), (1, 0)
    elif case == "cnn layer":
        x, k, mode, axes = random(rng, (1, 9, 9), "float64"), random(rng, (3, 3, 3), "float64"), \
            "valid", (1, 2)
    elif case in ("float32", "complex64"):
        x, k, boundary = random(rng, x.shape, case), random(rng, k.shape, case), "wrap"
    elif case == "kernel larger than the image":
        x, k, mode, boundary = random(rng, (6, 5), "float64"), random(rng, (13, 11), "float64"), \
            "full", "mirror"
    elif case == "uint16 image":
        x, k = (x * 1000).astype(np.uint16), k.astype(np.float32)
    c = random(rng, fftconv.correlate(x, k, mode, axes=axes).shape,
               np.result_type(x.dtype, k.dtype, np.float32))
    expected = fftconv.correlate_vjp(x, k, c, mode, boundary=boundary, axes=axes)
    image = x if case == "dask cotangent only" else da.from_array(x, chunks=image_chunks)
    if case == "computed image":  # not a plain read: no second read, strips from the chunks
        image = image * 1.0
    lazy = fftconv.correlate_vjp(image, k, da.from_array(c, chunks=5), mode, boundary=boundary,
                                 axes=axes)
    work = np.result_type(x.dtype, k.dtype, np.float32)
    tol = 1e-10 if work in (np.float64, np.complex128) else 1e-5
    for got, want in zip(da.compute(*lazy), expected):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_vjp_tiled_builds_without_computing_and_checks_the_cotangent():
    def explode(block):
        raise AssertionError("computed while building the graph")

    x = da.map_blocks(explode, da.zeros((50, 50), chunks=10), dtype=float)
    grads = fftconv.convolve_vjp(x, np.ones((5, 5)), da.ones((50, 50), chunks=10),
                                 boundary="reflect")
    assert [g.shape for g in grads] == [(50, 50), (5, 5)]
    with pytest.raises(ValueError, match="cotangent has shape"):
        fftconv.convolve_vjp(x, np.ones((5, 5)), da.ones((46, 46), chunks=10), "same")


@pytest.mark.parametrize("method", ["direct", "fft", "overlap-add", "auto"])
def test_methods_and_float32_meta(rng, method):
    x = random(rng, (40, 33), "float32")
    k = random(rng, (7, 7), "float32")
    lazy = fftconv.convolve(da.from_array(x, chunks=9), k, method=method, boundary="mirror")
    assert lazy.dtype == np.float32 and lazy._meta.dtype == np.float32
    assert_matches(lazy.compute(), reference(x, k, "same", "mirror"), "float32")


def test_channel_axis_and_per_slice_kernel(rng):
    x = random(rng, (30, 26, 3), "float32")
    k = random(rng, (5, 4), "float32")
    lazy = fftconv.convolve(da.from_array(x, chunks=(8, 9, 1)), k, "full", axes=(0, 1))
    assert_matches(lazy.compute(), reference(x, k, "full", axes=(0, 1)), "float32")
    per_channel = random(rng, (5, 4, 3), "float32")
    lazy = fftconv.convolve(da.from_array(x, chunks=(8, 9, 1)), per_channel, axes=(0, 1))
    assert_matches(lazy.compute(), reference(x, per_channel, axes=(0, 1)), "float32")


def test_kernel_is_embedded_once(rng):
    x = da.from_array(random(rng, (200, 200), "float64"), chunks=20)
    k = random(rng, (31, 31), "float64")
    graph = dict(fftconv.convolve(x, k).__dask_graph__())

    def is_kernel(value):
        return isinstance(value, np.ndarray) and value.shape == k.shape

    def count(value):
        found = 1 if is_kernel(value) else 0
        if isinstance(value, (tuple, list)):
            found += sum(count(v) for v in value)
        for attr in ("args", "value"):  # dask's Task / DataNode objects
            inner = getattr(value, attr, None)
            if inner is not None and inner is not value:
                found += count(inner) if not isinstance(inner, dict) else 0
        return found

    assert sum(count(v) for v in graph.values()) == 1


@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_a_dask_kernel_alone_gives_a_lazy_result(rng, fn):
    """SPEC §2: a dask array in, a lazy one out, when only the kernel is one (before: the
    kernel was computed and an ndarray came back)."""
    x = random(rng, (60, 50), "float32")
    k = random(rng, (6, 5), "float32")
    lazy = getattr(fftconv, fn)(x, da.from_array(k, chunks=3), "full", boundary="mirror")
    assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
    assert_matches(lazy.compute(), reference(x, k, "full", "mirror", correlate=fn == "correlate"),
                   "float32")


def test_a_dask_template_alone_gives_lazy_scores(rng):
    x = random(rng, (40, 50), "float64")
    template = x[10:18, 20:30]
    lazy = fftconv.match_template(x, da.from_array(template, chunks=4))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), fftconv.match_template(x, template), atol=1e-9)


def test_graph_building_computes_nothing(rng):
    def explode(block):
        raise AssertionError("computed while building the graph")

    x = da.map_blocks(explode, da.zeros((50, 50), chunks=10), dtype=float)
    lazy = fftconv.convolve(x, np.ones((5, 5)), boundary="reflect", tile="auto")
    assert lazy.shape == (50, 50)


def test_shapes_only_callers_never_allocate_the_image():
    """A uint16 image (microscopy's usual) works in float32: building its graph converted a
    broadcast stand-in of the whole image (1 GiB at 16384²); so did plan() for any dtype
    other than the work dtype."""
    import tracemalloc

    x = da.zeros((4096, 4096), dtype=np.uint16, chunks=1024)
    tracemalloc.start()
    try:
        lazy = fftconv.convolve(x, np.ones((3, 3), np.float32), boundary="reflect")
        fftconv.Convolver(np.ones((5, 5))).plan((4096, 4096))  # float64 kernel, float32 image
        fftconv.plan((4096, 4096), (5, 5), dtype="uint16")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lazy.dtype == np.float32
    assert peak < 8 * 2**20, peak  # the image in float32: 64 MiB


@pytest.mark.parametrize("boundary", ["reflect", "mirror", "nearest", "wrap"])
def test_an_image_in_one_chunk_is_not_extended_for_a_box_far_larger(rng, boundary):
    """The command line's ``box:size=20000`` on a 128² image: each tile was the chunk plus
    the boundary's extension (20127², a MemoryError under a 3 GiB cap).  An image whole
    along the convolved axes goes to the in-memory engine with its boundary rule, whose
    box route extends nothing; a broadcast kernel travels as its one value."""
    import pickle
    import tracemalloc

    x = random(rng, (3, 64, 64), "float32")
    k = np.broadcast_to(np.float32(1 / 3000**2), (1, 3000, 3000))
    lazy = fftconv.convolve(da.from_array(x, chunks=(1, 64, 64)), k, boundary=boundary)
    assert len(pickle.dumps(dict(lazy.dask))) < 2**16  # not the 36 MB the kernel pickles to
    lazy.compute(scheduler="sync")  # imports and first-call set-up are not what is measured
    tracemalloc.start()
    try:
        got = lazy.compute(scheduler="sync")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak
    np.testing.assert_array_equal(got, fftconv.convolve(x, k, boundary=boundary))
    small = rng.uniform(size=(1, 90, 80))  # any kernel: the in-memory result, exactly
    np.testing.assert_allclose(
        fftconv.convolve(da.from_array(x, chunks=(2, 64, 64)), small, "full",
                         boundary=boundary).compute(),
        fftconv.convolve(x, small, "full", boundary=boundary), rtol=1e-6, atol=1e-6)


def test_settings_are_fixed_when_the_graph_is_built(rng, monkeypatch):
    backend = fftconv._registry.discovery.load_backend("numpy")
    used = []
    original = backend.rfftn
    monkeypatch.setattr(backend, "rfftn", lambda *a, **kw: used.append(1) or original(*a, **kw))
    x = random(rng, (60, 60), "float64")
    with fftconv.set_backend("numpy"):
        lazy = fftconv.convolve(da.from_array(x, chunks=30), random(rng, (9, 9), "float64"),
                                method="fft")
    lazy.compute()  # outside the with block: the graph still uses numpy
    assert used


def test_vjp_settings_are_fixed_when_the_graph_is_built(rng):
    from fftconv._ops import lazy_adjoint as _lazy_adjoint

    x = da.from_array(random(rng, (60, 60), "float64"), chunks=30)
    with fftconv.set_backend("numpy"), fftconv.config.set(planner_effort="patient"):
        grads = fftconv.correlate_vjp(x, np.ones((9, 9)), da.ones((60, 60), chunks=30))
    parts = [task for task in dict(grads[1].__dask_graph__()).values()
             if isinstance(task, tuple) and task and task[0] is _lazy_adjoint._kernel_part]
    assert len(parts) == 4
    assert all(task[-1]["backend"] == "numpy" and task[-1]["planner_effort"] == "patient"
               and task[-1]["workers"] == 1 for task in parts)
    blocks = [task for task in dict(grads[0].__dask_graph__()).values()
              if isinstance(task, tuple) and task
              and task[0] is fftconv._tiling.blocks.convolve_block]
    assert blocks and all(task[-1]["backend"] == "numpy" for task in blocks)  # the image's


def test_tile_auto_picks_fast_lengths(rng):
    x = random(rng, (300, 70), "float32")
    k = random(rng, (31, 5), "float32")
    lazy = fftconv.convolve(da.from_array(x, chunks=(97, 70)), k, tile="auto")
    backend = fftconv._registry.discovery.load_backend(fftconv.get_backend())
    for n in lazy.chunks[0][:-1]:
        assert backend.next_fast_len(n + 30, True) == n + 30
    assert_matches(lazy.compute(), reference(x, k), "float32")
    with pytest.raises(ValueError, match="dask arrays only"):
        fftconv.convolve(x, k, tile="auto")


def _kernels_in(graph) -> list[tuple[int, ...]]:
    """The shapes of the kernels a graph holds (the arrays inside its delayed values)."""
    shapes = []

    def walk(value):
        if isinstance(value, np.ndarray):
            shapes.append(value.shape)
        elif isinstance(value, (tuple, list)):
            for v in value:
                walk(v)
        for attr in ("args", "value"):  # dask's Task / DataNode objects
            inner = getattr(value, attr, None)
            if inner is not None and inner is not value and not isinstance(inner, dict):
                walk(inner)

    for v in dict(graph).values():
        walk(v)
    return shapes


@pytest.mark.parametrize("mode, cval, nan_policy, taps", [
    ("same", 0.0, "propagate", 9), ("full", 0.0, "propagate", 31), ("same", 0.0, "interpolate", 31),
    ("same", 0.5, "propagate", 31),
])
@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_taps_past_the_image_are_left_out_of_the_graph(rng, fn, mode, cval, nan_policy, taps):
    """A 31-slice PSF over a 5-slice stack ('same', zeros outside) embeds only the 9 slices
    that meet data, so no block is padded by 30 slices of zeros (before: every block was
    a 35-slice transform for 5 slices of data).  Where the dropped taps would see cval or
    count in interpolate's weights, the kernel stays whole."""
    x = random(rng, (5, 40, 36), "float64")
    x[2, 20, 20] = np.nan
    k = random(rng, (31, 7, 6), "float64")
    lazy = getattr(fftconv, fn)(da.from_array(x, chunks=(5, 16, 16)), k, mode, cval=cval,
                                nan_policy=nan_policy)
    kernels = [s for s in _kernels_in(lazy.__dask_graph__()) if s[1:] == (7, 6)]
    assert kernels == [(taps, 7, 6)]
    expected = getattr(fftconv, fn)(x, k, mode, cval=cval, nan_policy=nan_policy)
    got = lazy.compute()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert_matches(np.nan_to_num(got), np.nan_to_num(expected), "float64")
    if nan_policy == "propagate":
        clean = np.nan_to_num(x)
        assert_matches(getattr(fftconv, fn)(da.from_array(clean, chunks=(5, 16, 16)), k, mode,
                                            cval=cval).compute(),
                       reference(clean, k, mode, "constant", cval=cval,
                                 correlate=fn == "correlate"), "float64")


def test_a_block_never_returns_its_reused_tile(rng, monkeypatch):
    """Blocks not convolved by an in-place FFT join their pieces into the thread's reused
    tile (a fresh one per block cost page faults: 8192² in 1024² chunks ⊛ a 17² Gaussian,
    485 → 336 ms).  A route that handed back a view of that tile would see it overwritten
    by the next block: the block copies such a result out."""
    from fftconv._tiling import blocks as _blocks

    x = random(rng, (40, 36), "float64")
    image = da.from_array(x, chunks=(10, 12))
    expected = fftconv.convolve(x, np.ones((3, 3)), method="direct")
    assert_matches(fftconv.convolve(image, np.ones((3, 3)), method="direct").compute(
        scheduler="sync"), expected, "float64")
    monkeypatch.setattr(_blocks, "run_request", lambda request, *a, **k: request.image[1:-1, 1:-1])
    lazy = fftconv.convolve(image, np.ones((3, 3)), method="direct")
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), x)  # each block its own


def test_small_chunks_merge_into_blocks(rng, monkeypatch):
    """Blocks of small chunks are merged to ~BLOCK_ELEMENTS pixels; the output keeps the
    input's chunks.  A block per chunk: a 4096² zarr image in 64² chunks ⊛ 101² took
    33.5 s; merged into 1024² blocks, 13.2 s (mostly zarr's small reads and writes)."""
    from fftconv._tiling import chunks as _chunks

    monkeypatch.setattr(_chunks, "BLOCK_ELEMENTS", 24 * 24)
    x = random(rng, (70, 50, 3), "float64")
    k = random(rng, (5, 4), "float64")
    image = da.from_array(x, chunks=(8, 10, 1))
    lazy = fftconv.convolve(image, k, boundary="reflect", axes=(0, 1))
    assert lazy.chunks == image.chunks
    blocks = {key for key in lazy.__dask_graph__() if isinstance(key, tuple)
              and key[0].startswith("fftconv-") and key[0].count("-") == 1}
    assert len(blocks) == 3 * 2 * 3  # (24, 24, 22) × (30, 20) × 3 channels
    expected = np.stack([reference(x[..., c], k, "same", "reflect") for c in range(3)], -1)
    assert_matches(lazy.compute(), expected, "float64")
    tiled = fftconv.convolve(image, k, boundary="reflect", axes=(0, 1), tile="auto")
    assert len(tiled.chunks[0]) < 5  # tiles near a block's length, not a chunk's
    assert_matches(tiled.compute(), expected, "float64")


def test_long_chunks_are_not_merged_along_their_short_axis(rng, monkeypatch):
    """A stack whose chunks already hold BLOCK_ELEMENTS pixels keeps its blocks: before,
    every axis was merged to BLOCK_ELEMENTS ** (1 / 3) on its own, and 2048² planes in
    chunks of 16 became blocks of 112 planes (1.8 GiB of float32 each)."""
    from fftconv._tiling import chunks as _chunks

    monkeypatch.setattr(_chunks, "BLOCK_ELEMENTS", 10**3)
    x = random(rng, (24, 30, 20), "float64")
    k = random(rng, (3, 3, 3), "float64")
    image = da.from_array(x, chunks=(2, 30, 20))  # 1200 pixels a chunk
    lazy = fftconv.convolve(image, k, boundary="nearest")
    blocks = {key for key in lazy.__dask_graph__() if isinstance(key, tuple)
              and key[0].startswith("fftconv-") and key[0].count("-") == 1}
    assert len(blocks) == 12  # a chunk each; 10 a side would have merged planes by 5
    assert_matches(lazy.compute(), reference(x, k, "same", "nearest"), "float64")


def test_blocks_grow_along_a_long_halo(rng, monkeypatch):
    """A stack a plane a chunk ⊛ a kernel 5 planes deep: blocks of 8 planes, not a plane
    each reading 5 (at 64 × 1024² ⊛ 9 × 17 × 17, 3.5-3.6 s against 2.0-2.1 s)."""
    from fftconv._tiling import chunks as _chunks

    monkeypatch.setattr(_chunks, "MOST_BLOCK_ELEMENTS", 8 * 30 * 20)
    x = random(rng, (24, 30, 20), "float64")
    k = random(rng, (5, 3, 3), "float64")
    image = da.from_array(x, chunks=(1, 30, 20))
    lazy = fftconv.convolve(image, k, boundary="reflect")
    assert lazy.chunks == image.chunks
    blocks = {key for key in lazy.__dask_graph__() if isinstance(key, tuple)
              and key[0].startswith("fftconv-") and key[0].count("-") == 1}
    assert len(blocks) == 3  # 1, 2, 4, 8 planes; 16 would pass MOST_BLOCK_ELEMENTS
    assert_matches(lazy.compute(), reference(x, k, "same", "reflect"), "float64")


def test_nan_stays_local_across_chunks(rng):
    x = random(rng, (40, 40), "float32")
    x[19, 20] = np.nan  # next to a chunk edge
    got = fftconv.convolve(da.from_array(x, chunks=20), np.ones((3, 3), np.float32)).compute()
    assert np.isnan(got).sum() == 9 and np.isnan(got[18:21, 19:22]).all()


def test_unknown_chunk_sizes_are_a_clear_error(rng):
    x = da.from_array(random(rng, (40, 30), "float32"), chunks=10)
    rows = x[x[:, 0] > 0]  # boolean indexing: the row chunks are unknown
    for call in (lambda: fftconv.convolve(rows, np.ones((3, 3))),
                 lambda: fftconv.match_template(rows, np.ones((3, 3))),
                 lambda: fftconv.window_sum(rows, 3),
                 lambda: fftconv.convolve_vjp(rows, np.ones((3, 3)), rows)):
        with pytest.raises(ValueError, match=r"image has .*image.compute_chunk_sizes"):
            call()
    with pytest.raises(ValueError, match=r"cotangent.compute_chunk_sizes"):
        fftconv.correlate_vjp(np.ones((21, 30)), np.ones((3, 3)), rows)
    known = rows.compute_chunk_sizes()
    k = np.ones((3, 3), np.float32)
    assert_matches(fftconv.convolve(known, k).compute(), reference(known.compute(), k, "same"),
                   "float32")


def test_convolver_on_dask(rng):
    k = random(rng, (9, 9), "float32")
    conv = fftconv.Convolver(k, boundary="nearest")
    x = random(rng, (64, 48), "float32")
    lazy = conv(da.from_array(x, chunks=16))
    assert_matches(lazy.compute(), reference(x, k, "same", "nearest"), "float32")


def test_processes_scheduler(rng):
    x = random(rng, (48, 40), "float64")
    k = random(rng, (7, 6), "float64")
    lazy = fftconv.correlate(da.from_array(x, chunks=16), k, boundary="wrap")
    got = lazy.compute(scheduler="processes", num_workers=2)
    assert_matches(got, reference(x, k, "same", "wrap", correlate=True), "float64")


def _peak_held_bytes(lazy) -> int:
    """The most bytes of task results dask held at once (synchronous scheduler)."""
    from dask.callbacks import Callback

    peak = [0]

    class Track(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            held = sum(v.nbytes for v in state["cache"].values() if isinstance(v, np.ndarray))
            peak[0] = max(peak[0], held)

    with Track():
        lazy.sum().compute(scheduler="sync")
    return peak[0]


@pytest.mark.parametrize("cval", [0.0, -1.0, 0.5])
def test_integer_store_reads_keep_the_second_read(rng, tmp_path, cval):
    """A uint16 image (microscopy's usual) converts in the blocks, not in an astype layer
    that made its reads unfit for a second read (758 MiB at 16384², 340 MiB now); a cval
    that uint16 cannot hold converts first, as before."""
    zarr = pytest.importorskip("zarr")
    x = (random(rng, (512, 512), "float64") * 1000).astype(np.uint16)
    store = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(64, 64),
                              dtype=x.dtype)
    store[...] = x
    k = random(rng, (9, 9), "float32")
    lazy = fftconv.convolve(da.from_zarr(store), k, boundary="constant", cval=cval)
    rereads = any(str(key[0]).startswith("fftconv-reread-")
                  for key in lazy.__dask_graph__() if isinstance(key, tuple))
    assert rereads == (cval == 0.0)
    if rereads:
        assert _peak_held_bytes(lazy) <= 8 * 64 * 64 * 4
    assert lazy.dtype == np.float32
    assert_matches(lazy.compute(), reference(x, k, "same", "constant", cval=cval), "float32")


@pytest.mark.parametrize("cval", [0.0, 1.0 + 2.0j])
def test_a_real_image_with_a_complex_result_warns_nothing(rng, cval):
    """dtype=complex64 over a float32 image: checking whether cval survives the image's
    dtype cast a complex to real, with numpy's ComplexWarning to the user."""
    import warnings

    x = random(rng, (40, 30), "float32")
    k = random(rng, (5, 4), "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = fftconv.convolve(da.from_array(x, chunks=16), k, cval=cval, dtype="complex64")
        out = lazy.compute()
    assert_matches(out, reference(x, k, "same", "constant", cval=cval), "complex64")


@pytest.mark.parametrize("boundary", ["constant", "reflect"])
def test_halo_graph_holds_few_chunks(rng, tmp_path, boundary):
    """Store-read inputs: strips come from a second read, so whole rows are never held."""
    zarr = pytest.importorskip("zarr")
    x = random(rng, (512, 512), "float64")
    chunk_bytes = 64 * 64 * 8
    store = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(64, 64),
                              dtype=x.dtype)
    store[...] = x
    image = da.from_zarr(store)
    lazy = fftconv.convolve(image, np.ones((9, 9)) / 81, boundary=boundary)
    assert any(str(k[0]).startswith("fftconv-reread-") for k in lazy.__dask_graph__()
               if isinstance(k, tuple))
    assert _peak_held_bytes(lazy) <= 8 * chunk_bytes  # 17-21 chunks without the rereads
    assert_matches(lazy.compute(), reference(x, np.ones((9, 9)) / 81, "same", boundary),
                   "float64")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ["constant", "mirror", "wrap"])
def test_held_halos_read_each_chunk_once(rng, tmp_path, mode, boundary):
    """``halo_reads="hold"``: the strips come from the one read (faster, holds more)."""
    zarr = pytest.importorskip("zarr")
    x = random(rng, (120, 100), "float64")
    k = random(rng, (9, 6), "float64")
    store = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(32, 24),
                              dtype=x.dtype)
    store[...] = x
    with fftconv.config.set(halo_reads="hold"):
        lazy = fftconv.convolve(da.from_zarr(store), k, mode, boundary=boundary, cval=0.3)
    keys = [k[0] for k in lazy.__dask_graph__() if isinstance(k, tuple)]
    assert not any(str(name).startswith("fftconv-reread-") for name in keys)
    reread = fftconv.convolve(da.from_zarr(store), k, mode, boundary=boundary, cval=0.3)
    assert reread.name != lazy.name  # a different graph, so a different key
    assert_matches(lazy.compute(), reference(x, k, mode, boundary, cval=0.3), "float64")


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 20), chunk=st.integers(1, 7), pad=st.tuples(*[st.integers(0, 45)] * 2),
       boundary=st.sampled_from(BOUNDARIES), data=st.data())
def test_axis_pieces_copy_the_extension(n, chunk, pad, boundary, data):
    """The pieces of any range of an extension (wider than the image too) are its values:
    views into the chunks inline (index arrays where the extension turns more often than at
    the image's two edges), copies in the strip tasks."""
    from fftconv._core.boundary import source_index
    from fftconv._tiling.pieces import axis_pieces, chunk_cut, chunk_view, constant_piece

    x = np.arange(n) + 10.0
    bounds = [*range(0, n, chunk), n]
    src = source_index(n, pad, boundary)
    lo = data.draw(st.integers(0, len(src) - 1))
    hi = data.draw(st.integers(lo + 1, len(src)))
    parts = []
    for c, selector, length in axis_pieces(src[lo:hi], np.diff(bounds)):
        if c is None:
            parts.append(constant_piece((length,), -1.0, x.dtype))
            continue
        chunk_values = x[bounds[c]:bounds[c + 1]]
        view, copy = chunk_view(chunk_values, (selector,)), chunk_cut(chunk_values, (selector,))
        assert view.shape == copy.shape == (length,)
        assert np.shares_memory(view, chunk_values) == (not isinstance(selector, np.ndarray))
        assert not np.shares_memory(copy, chunk_values)
        np.testing.assert_array_equal(view, copy)
        parts.append(view)
    np.testing.assert_array_equal(np.concatenate(parts), np.where(src >= 0, x[src], -1)[lo:hi])


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_edge_blocks_read_the_chunks_they_copy(rng, tmp_path, boundary):
    """The extension is never built: its pieces point into the input's chunks.  It was a
    lazy pad (take and concatenate layers: 10 layers and 868-970 tasks for 8 × 8 chunks),
    and dask ran the edge blocks last, holding the chunks they owned (5.0 s at 570-585 MiB
    against 5.6-5.8 s at 444-458 MiB at 16384², when halos had no second read)."""
    x = random(rng, (512, 512), "float64")
    (image,) = _zarr_arrays(tmp_path, (64, 64), x=x)
    k = random(rng, (9, 9), "float64")
    lazy = fftconv.convolve(image, k, boundary=boundary)
    graph = lazy.__dask_graph__()
    graph = graph.cull(set(dask.core.flatten(lazy.__dask_keys__())))
    # The store, its reads (fftconv's own, see test_zarr_chunks_are_read_directly), the
    # kernel, the blocks (merged: one here, so no second reads) and their rechunking.
    assert len(graph.layers) == 5
    assert len(graph) < 720
    assert_matches(lazy.compute(), reference(x, k, "same", boundary), "float64")


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_image_smaller_than_the_kernel_in_small_chunks(rng, boundary):
    """An extension wider than the image turns at each of its edges; in 2² chunks that was
    a piece per chunk per turn: 61787 tasks and 9-11 s for this graph, now one chunk along
    each axis shorter than the kernel (the kernel gradient's sums read the same way)."""
    x = random(rng, (4, 6), "float64")
    k = random(rng, (41, 41), "float64")
    lazy = fftconv.convolve(da.from_array(x, chunks=2), k, mode="full", boundary=boundary)
    assert len(lazy.__dask_graph__()) < 200
    assert_matches(lazy.compute(), reference(x, k, "full", boundary), "float64")
    cot = random(rng, lazy.shape, "float64")
    grads = fftconv.convolve_vjp(da.from_array(x, chunks=2), k, da.from_array(cot, chunks=2),
                                 mode="full", boundary=boundary)
    assert len(grads[1].__dask_graph__()) < 6000  # a part per cotangent block; 10172 before
    expected = fftconv.convolve_vjp(x, k, cot, mode="full", boundary=boundary)[1]
    np.testing.assert_allclose(grads[1].compute(), expected, rtol=1e-10, atol=1e-10)


def test_any_window_of_the_full_convolution(rng):
    """The adjoints ask _dask.convolve for windows no mode gives, some starting past the
    kernel's reach (their blocks read from the wrong rows before)."""
    from fftconv._tiling import tiled as _dask

    x = random(rng, (30, 11), "float64")
    k = random(rng, (5, 3), "float64")
    full = reference(x, k, "full")
    for a, b in [(0, 4), (3, 30), (23, 34), (30, 34), (7, 9)]:
        for c, d in [(0, 13), (2, 11), (11, 13)]:
            got = _dask.convolve(da.from_array(x, chunks=(7, 4)), k, "full", "constant", 0.0,
                                 None, "auto", None, None, "propagate", None, flip=False,
                                 windows=[(a, b), (c, d)])
            np.testing.assert_allclose(got.compute(), full[a:b, c:d], atol=1e-12)
    # Equal windows elsewhere, reading no extension: the task names must still differ.
    one, two = (_dask.convolve(da.from_array(x, chunks=(7, 4)), k, "full", "constant", 0.0,
                               None, "auto", None, None, "propagate", None, flip=False,
                               windows=[window, (2, 11)]) for window in [(8, 12), (20, 24)])
    assert one.name != two.name
    got_one, got_two = da.compute(one, two)
    np.testing.assert_allclose(got_one, full[8:12, 2:11], atol=1e-12)
    np.testing.assert_allclose(got_two, full[20:24, 2:11], atol=1e-12)


def _zarr_arrays(folder, chunks, **arrays) -> list:
    """Each array written to its own zarr store in ``folder``, read back lazily."""
    zarr = pytest.importorskip("zarr")
    lazy = []
    for name, values in arrays.items():
        store = zarr.create_array(str(folder / f"{name}.zarr"), shape=values.shape,
                                  chunks=chunks, dtype=values.dtype)
        store[...] = values
        lazy.append(da.from_zarr(store))
    return lazy


def test_vjp_holds_few_chunks(rng, tmp_path):
    """Both gradients read a store-read input as convolve does, strips from a second read.

    Without it, the kernel's held 40 chunks (every block waited for its neighbours'
    whole chunks) and the image's 33 (a padded, rechunked cotangent).
    """
    x, c = random(rng, (512, 512), "float64"), random(rng, (512, 512), "float64")
    stores = _zarr_arrays(tmp_path, (64, 64), x=x, c=c)
    k = random(rng, (9, 9), "float64")
    lazy = fftconv.correlate_vjp(stores[0], k, stores[1], boundary="reflect")
    assert _peak_held_bytes(lazy[1]) <= 10 * 64 * 64 * 8
    assert _peak_held_bytes(lazy[0]) <= 16 * 64 * 64 * 8
    for got, expected in zip(lazy, fftconv.correlate_vjp(x, k, c, boundary="reflect")):
        np.testing.assert_allclose(got.compute(), expected, rtol=1e-10, atol=1e-12)


def test_computed_inputs_are_never_recomputed_for_halos(rng):
    x = random(rng, (96, 96), "float64")
    image = da.from_array(x, chunks=32) * 2.0  # chunks are computations, not reads
    lazy = fftconv.convolve(image, np.ones((5, 5)), boundary="wrap")
    assert not any(str(k[0]).startswith("fftconv-reread-") for k in lazy.__dask_graph__()
                   if isinstance(k, tuple))
    assert_matches(lazy.compute(), reference(2 * x, np.ones((5, 5)), "same", "wrap"),
                   "float64")


def test_pieces_join_into_the_padded_transform_shape(rng):
    from fftconv._tiling.join import join_into, join_starts

    # nested one level per axis, as the graph builds them
    parts = [[[random(rng, (a, b, 3), "float32")] for b in (4, 1, 6)] for a in (2, 5)]
    starts = join_starts(parts)
    joined = join_into(parts, starts, np.full((9, 12, 3), np.nan, np.float32))
    expected = np.zeros((9, 12, 3), np.float32)
    expected[:7, :11] = np.block(parts)
    assert np.array_equal(joined, expected)


@pytest.mark.parametrize("method", ["fft", "overlap-add", "direct"])
def test_blocks_joined_padded_match_every_method(rng, method):
    da = pytest.importorskip("dask.array")
    x = random(rng, (50, 47), "float64")
    k = random(rng, (9, 6), "float64")
    got = fftconv.convolve(da.from_array(x, chunks=(17, 13)), k, boundary="wrap",
                           method=method).compute()
    assert_matches(got, reference(x, k, "same", "wrap"), "float64")


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("boundary", ["constant", "reflect", "wrap"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_match_template_tiles_like_convolve(rng, mode, boundary, dtype):
    x = random(rng, (45, 52), dtype)
    x[:12, :12] = 3.0  # flat windows score 0 in both
    template = x[20:29, 30:37].copy()
    lazy = fftconv.match_template(da.from_array(x, chunks=(11, 17)), template, mode,
                                  boundary=boundary)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.dtype(dtype)
    expected = fftconv.match_template(x, template, mode, boundary=boundary)
    np.testing.assert_allclose(lazy.compute(), expected,
                               atol=1e-6 if dtype == "float32" else 1e-12)


def test_match_template_lazy_mask_and_no_compute(rng):
    def explode(block):
        raise AssertionError("computed while building the graph")

    bomb = da.map_blocks(explode, da.zeros((40, 40), chunks=10), dtype=float)
    mask = np.ones((5, 6), dtype=bool)
    mask[:, :2] = False
    assert fftconv.match_template(bomb, np.arange(30.0).reshape(5, 6), mask=mask).shape \
        == (36, 35)
    x = rng.random((40, 40))
    template = x[8:13, 20:26].copy()
    got = fftconv.match_template(da.from_array(x, chunks=13), template, mask=mask).compute()
    np.testing.assert_allclose(got, fftconv.match_template(x, template, mask=mask),
                               atol=1e-12)


# -- estimate_kernel -----------------------------------------------------------------------



ESTIMATE_CASES = [(mode, boundary, ["uniform", "ragged"][i % 2], [(4, 3), (3, 3)][i // 2 % 2])
                  for i, (mode, boundary) in enumerate(
                      (m, b) for m in MODES for b in BOUNDARIES)]


@pytest.mark.parametrize("mode, boundary, chunking, kshape", ESTIMATE_CASES)
def test_estimate_kernel_tiled_equals_in_memory(rng, mode, boundary, chunking, kshape):
    """estimate_kernel of a dask image is lazy (SPEC §2): it loaded the whole image before."""
    x = rng.random((23, 19))
    k = rng.random(kshape)
    y = fftconv.convolve(x, k, mode, boundary=boundary)
    lazy, fit = fftconv.estimate_kernel(da.from_array(x, chunks=CHUNKINGS[chunking]), y,
                                        kshape, mode, boundary=boundary, full_output=True)
    assert isinstance(lazy, da.Array) and lazy.shape == kshape and lazy.dtype == np.float64
    got, fit = dask.compute(lazy, fit)
    expected, expected_fit = fftconv.estimate_kernel(x, y, kshape, mode, boundary=boundary,
                                                     full_output=True)
    np.testing.assert_allclose(got, expected, atol=1e-10)
    np.testing.assert_allclose(got, k, atol=1e-10)
    assert fit.converged and fit.relative_residual < 1e-10
    assert abs(fit.iterations - expected_fit.iterations) <= 2


@pytest.mark.parametrize("lam, chunks", [(0.0, (7, 6)), (0.3, (2, 3))])
def test_estimate_kernel_tiled_masked_noisy(rng, lam, chunks):
    """Every input lazy, output chunked unlike the image, chunks smaller than the halo."""
    x = rng.random((20, 18))
    k = rng.random((3, 4))
    y = fftconv.convolve(x, k, boundary="nearest") + 0.05 * rng.standard_normal((20, 18))
    mask = np.ones(y.shape, dtype=bool)
    mask[:3] = False
    y[:3] = 99.0  # unknown rows: ignored
    args = dict(boundary="nearest", regularization=lam, full_output=True)
    lazy, fit = fftconv.estimate_kernel(da.from_array(x, chunks=chunks),
                                        da.from_array(y, chunks=(7, 5)), (3, 4),
                                        mask=da.from_array(mask, chunks=4), **args)
    got, fit = dask.compute(lazy, fit)
    expected, expected_fit = fftconv.estimate_kernel(x, y, (3, 4), mask=mask, **args)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert fit.converged
    np.testing.assert_allclose(fit.residual, expected_fit.residual, rtol=1e-9)
    np.testing.assert_allclose(fit.relative_residual, expected_fit.relative_residual,
                               rtol=1e-9)


def test_estimate_kernel_tiled_builds_without_computing_and_checks_early(rng):
    def explode(block):
        raise AssertionError("computed while building the graph")

    bomb = da.map_blocks(explode, da.zeros((40, 40), chunks=10), dtype=float)
    assert fftconv.estimate_kernel(bomb, bomb, (5, 5), boundary="wrap").shape == (5, 5)
    with pytest.raises(ValueError, match="output has shape"):
        fftconv.estimate_kernel(bomb, da.zeros((36, 36), chunks=10), (5, 5))
    with pytest.raises(ValueError, match="mask has shape"):
        fftconv.estimate_kernel(bomb, bomb, (5, 5), mask=da.ones((36, 36), chunks=10))
    with pytest.raises(ValueError, match="kernel_shape"):
        fftconv.estimate_kernel(bomb, bomb, (5,))
    rows = da.from_array(rng.random((40, 40)), chunks=10)
    rows = rows[rows[:, 0] > 0.5]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fftconv.estimate_kernel(rows, rows, (3, 3))


def test_estimate_kernel_tiled_holds_few_chunks(rng, tmp_path):
    """Each pass reads a store-read image as the kernel gradient does: strips from a second
    read, so a pass holds ~6 chunks (16-20 without)."""
    from fftconv._ops import lazy_estimate as _lazy_estimate

    x = rng.random((192, 192))
    k = rng.random((5, 5))
    y = fftconv.convolve(x, k, boundary="reflect")
    stores = _zarr_arrays(tmp_path, (32, 32), x=x, y=y)
    problem = _lazy_estimate._Problem(*stores, (5, 5), "same", "reflect", None)
    for subtract in (True, False):
        part, squares = _lazy_estimate.pass_graph(problem, k, subtract)
        assert _peak_held_bytes(da.concatenate([part.ravel(), squares[None]])) \
            <= 10 * 32 * 32 * 8
    lazy = fftconv.estimate_kernel(*stores, (5, 5), boundary="reflect", maxiter=3)
    expected = fftconv.estimate_kernel(x, y, (5, 5), boundary="reflect", maxiter=3)
    np.testing.assert_allclose(lazy.compute(), expected, atol=1e-10)


def test_estimate_kernel_on_processes_and_a_one_thread_cluster(rng):
    """The fit's task runs its passes from inside a worker: a cluster with one thread in
    all would wait forever if that task kept its thread."""
    distributed = pytest.importorskip("distributed")
    x = rng.random((40, 36))
    k = rng.random((4, 5))
    y = fftconv.convolve(x, k, boundary="wrap")
    lazy = fftconv.estimate_kernel(da.from_array(x, chunks=16), da.from_array(y, chunks=20),
                                   k.shape, boundary="wrap")
    np.testing.assert_allclose(lazy.compute(scheduler="processes", num_workers=2), k,
                               atol=1e-10)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        got = client.compute(lazy).result(timeout=120)
    np.testing.assert_allclose(got, k, atol=1e-10)


def test_estimate_kernel_passes_run_on_as_many_threads_as_cores(rng, monkeypatch):
    """From the solve's task (not the main thread) dask's threaded scheduler started
    cores + 4 threads per pass: 0.7 GiB at 8192² instead of 0.36."""
    import threading

    from fftconv._ops import lazy_estimate as _lazy_estimate

    threads = set()
    part = _lazy_estimate._normal_part
    monkeypatch.setattr(_lazy_estimate, "_normal_part",
                        lambda *a: threads.add(threading.get_ident()) or part(*a))
    x = rng.random((60, 60))
    k = rng.random((3, 3))
    lazy = fftconv.estimate_kernel(da.from_array(x, chunks=6),
                                   fftconv.convolve(x, k), (3, 3), maxiter=2)
    with dask.config.set(scheduler="threads"):
        lazy.compute()
    assert 0 < len(threads) <= dask.system.CPU_COUNT


def test_estimate_kernel_fit_is_lazy_and_solved_once_with_the_kernel(rng, monkeypatch):
    """A Delayed fit beside the kernel array was optimized apart from it: computing
    both ran the whole solve twice, at once."""
    from fftconv._ops import lazy_estimate as _lazy_estimate

    solves = []
    solve = _lazy_estimate._solve
    monkeypatch.setattr(_lazy_estimate, "_solve", lambda *a: solves.append(1) or solve(*a))
    x = rng.random((30, 30))
    k = rng.random((3, 2))
    y = fftconv.convolve(x, k, "valid")
    lazy, fit = fftconv.estimate_kernel(da.from_array(x, chunks=10), y, (3, 2), "valid",
                                        full_output=True)
    assert solves == [] and "LazyFit" in repr(fit)
    got, fit_now = dask.compute(lazy, fit)
    assert len(solves) == 1
    assert isinstance(fit_now, fftconv.KernelFit) and fit_now.converged
    assert isinstance(fit_now.iterations, int) and fit_now.iterations > 0
    np.testing.assert_allclose(got, k, atol=1e-10)
    kept, kept_fit = dask.persist(lazy, fit)
    assert len(solves) == 2
    np.testing.assert_array_equal(kept.compute(), got)
    assert kept_fit.compute() == fit_now and len(solves) == 2


def test_estimate_kernel_tiled_complex_image_warns_once(rng):
    """Converted chunk by chunk, a complex image warned once per chunk and pass."""
    x = rng.random((30, 30)) + 1j * rng.random((30, 30))
    k = rng.random((3, 3))
    y = fftconv.convolve(x.real, k)
    with pytest.warns(np.exceptions.ComplexWarning) as caught:
        lazy = fftconv.estimate_kernel(da.from_array(x, chunks=10), y, (3, 3))
        got = lazy.compute()
    assert len(caught) == 1 and caught[0].filename == __file__
    np.testing.assert_allclose(got, k, atol=1e-10)


def test_estimate_kernel_iteration_checks_the_true_residual(rng):
    """The recursion's residual drifts from the true one; convergence is the true one's."""
    from fftconv._ops import lazy_estimate as _lazy_estimate

    a = rng.standard_normal((40, 6)) @ np.diag([1, 1, 1, 1, 1e-2, 1e-3])
    b = rng.standard_normal(40)
    passes = []

    def normal(p, subtract, sloppy=False):
        passes.append(subtract)
        r = a @ p.ravel() - (b if subtract else 0)
        h = a.T @ r
        if not subtract and sloppy:  # a pass whose products carry a relative error
            h = h * (1 + 1e-7 * rng.standard_normal(h.shape))
        return h.reshape(p.shape), float(r @ r)

    exact = np.linalg.lstsq(a, b, rcond=None)[0]
    for sloppy in (False, True):
        passes.clear()
        k, fit = _lazy_estimate._cgnr(functools.partial(normal, sloppy=sloppy), (6,), 0.0,
                                      1e-10, 200)
        true = a.T @ (b - a @ k)
        assert fit.converged and np.linalg.norm(true) <= 1e-10 * np.linalg.norm(a.T @ b)
        np.testing.assert_allclose(k, exact, rtol=1e-6)
        assert fit.residual == pytest.approx(np.linalg.norm(a @ k - b))
        restarts = sum(passes) - 2  # one pass with b to start, one to check each ending
        assert (restarts > 0) == sloppy
    b[:] = 0
    k, fit = _lazy_estimate._cgnr(normal, (6,), 0.0, 1e-10, 200)
    assert not k.any() and fit.converged and fit.iterations == 0


@pytest.mark.parametrize("backend", ["numpy", "scipy", "pyfftw"])
def test_vjp_kernel_grad_on_every_backend(rng, backend):
    """Blocks of kernel-sized sums (the kernel gradient, estimate_kernel's passes) transform
    their region themselves: by strips where the backend has in-place passes (scipy),
    whole where it has not."""
    if backend not in fftconv.available_backends():
        pytest.skip(f"{backend} is not installed")
    x = random(rng, (37, 30), "float32")
    k = random(rng, (6, 5), "float32")
    c = random(rng, (37, 30), "float32")
    with fftconv.set_backend(backend):
        lazy = fftconv.convolve_vjp(da.from_array(x, chunks=(12, 11)), k, c, boundary="mirror")
    expected = fftconv.convolve_vjp(x, k, c, boundary="mirror")[1]
    np.testing.assert_allclose(lazy[1].compute(), expected, rtol=1e-5, atol=1e-4)
    y = fftconv.convolve(x.astype(np.float64), k.astype(np.float64), boundary="mirror")
    with fftconv.set_backend(backend):
        fit = fftconv.estimate_kernel(da.from_array(x, chunks=(12, 11)), y, k.shape,
                                      boundary="mirror")
    np.testing.assert_allclose(fit.compute(), k, atol=1e-9)


def test_vjp_kernel_grad_keeps_nan_local_and_caches_no_block_spectra(rng):
    """NaN blocks take the planned route (an FFT would spread NaN over every lag); the
    others never hash and cache a cotangent block's spectrum as a kernel's (the planned
    route did: up to 128 MiB of them kept after the run)."""
    from fftconv._methods.spectra import SHARED

    x = random(rng, (40, 36), "float64")
    x[0, 5] = np.nan  # on the first row: only some lags of its blocks see it
    k = random(rng, (5, 4), "float64")
    c = random(rng, (40, 36), "float64")
    c[:2] = 0.0  # lags that meet the NaN only through these rows stay finite
    SHARED.clear()
    lazy = fftconv.correlate_vjp(da.from_array(x, chunks=(10, 9)), k, c)[1].compute()
    expected = fftconv.correlate_vjp(x, k, c)[1]
    assert 0 < np.isnan(expected).sum() < expected.size
    np.testing.assert_array_equal(np.isnan(lazy), np.isnan(expected))
    np.testing.assert_allclose(lazy[~np.isnan(lazy)], expected[~np.isnan(expected)],
                               atol=1e-12)
    x, c = random(rng, (300, 300), "float64"), random(rng, (300, 300), "float64")
    SHARED.clear()  # blocks large enough for the planned route to have taken an FFT
    fftconv.correlate_vjp(da.from_array(x, chunks=150), np.ones((41, 41)), c)[1].compute()
    assert len(SHARED) == 0


def test_estimate_kernel_merges_small_chunks_into_blocks(rng, monkeypatch):
    """Each pass pays every block's tasks and its neighbours' second reads: 8192² in 256²
    chunks took 8.6-11.5 s a pass, merged into 1024² blocks 5.5-8.3."""
    from fftconv._ops import lazy_estimate as _lazy_estimate
    from fftconv._tiling import chunks as _chunks

    monkeypatch.setattr(_chunks, "BLOCK_ELEMENTS", 24 * 24)
    x = rng.random((70, 50))
    k = rng.random((5, 4))
    y = fftconv.convolve(x, k, boundary="reflect")
    image = da.from_array(x, chunks=(8, 10))
    problem = _lazy_estimate._Problem(image, y, k.shape, "same", "reflect", None)
    assert problem.target.chunks == ((24, 24, 22), (30, 20))
    got = fftconv.estimate_kernel(image, y, k.shape, boundary="reflect").compute()
    np.testing.assert_allclose(got, k, atol=1e-10)
