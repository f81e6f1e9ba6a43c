"""Whole zarr chunks read and written without zarr's copies (fftconv._io.zarr_direct), and the
Dask path's and write_image's use of them: every read equals zarr's own, and every write
leaves the bytes zarr would, in every layout the module takes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from fftconv._io import zarr_direct as _zarr_direct  # noqa: E402

COMPRESSORS = {
    3: {"none": None, "zstd": lambda: zarr.codecs.ZstdCodec(checksum=True),
        "blosc": lambda: zarr.codecs.BloscCodec(), "gzip": lambda: zarr.codecs.GzipCodec()},
    2: {"none": None, "zstd": lambda: numcodecs.Zstd(), "blosc": lambda: numcodecs.Blosc(),
        "gzip": lambda: numcodecs.GZip(), "zlib": lambda: numcodecs.Zlib()},
}
CASES = [(f, c) for f, names in COMPRESSORS.items() for c in names]
DTYPES = ["float32", "float64", "int16", "uint8", "complex64", "bool"]


def _values(rng, shape, dtype):
    if dtype == "bool":
        return rng.random(shape) > 0.5
    return random(rng, shape, "float64" if dtype in ("int16", "uint8") else dtype) \
        if dtype not in ("int16", "uint8") else (rng.random(shape) * 100).astype(dtype)


def _store(kind, tmp_path):
    if kind == "local":
        return zarr.storage.LocalStore(tmp_path / "data.zarr")
    if kind == "fsspec":
        return zarr.storage.FsspecStore.from_url(f"file://{tmp_path / 'data.zarr'}",
                                                 storage_options={"auto_mkdir": True})
    return zarr.storage.MemoryStore()


def _array(store, fmt, compressor, dtype, shape=(7, 10), chunks=(3, 4), fill=3, config=None):
    """In a group (a non-empty path); the chunks wholly inside rows 3:6 are never written,
    so they are missing from the store and read as ``fill``."""
    make = COMPRESSORS[fmt][compressor]
    return zarr.create_array(store, name="group/image", shape=shape, chunks=chunks,
                             dtype=dtype, zarr_format=fmt, fill_value=fill, config=config,
                             compressors=None if make is None else make())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt, compressor", CASES)
@pytest.mark.parametrize("store", ["local", "fsspec", "memory"])
def test_every_chunk_reads_as_zarr_reads_it(rng, tmp_path, store, fmt, compressor, dtype):
    z = _array(_store(store, tmp_path), fmt, compressor, dtype)
    values = _values(rng, z.shape, dtype)
    z[:3], z[6:] = values[:3], values[6:]
    stored = _zarr_direct.layout(z)
    assert stored is not None
    for coords in np.ndindex(*z.cdata_shape):
        region = tuple(slice(i * c, min((i + 1) * c, n))
                       for i, c, n in zip(coords, z.chunks, z.shape))
        got = _zarr_direct.read_chunk(z, stored, coords, tuple(s.stop - s.start for s in region))
        expected = z[region]
        assert got.dtype == expected.dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, expected)
    missing = _zarr_direct.read_chunk(z, stored, (1, 0), (3, 4))
    np.testing.assert_array_equal(missing, np.full((3, 4), z.fill_value, z.dtype))


@pytest.mark.parametrize("n", [0, 5, 63, 64, 16_447, 16_448, 90_000, 2**22])
@pytest.mark.parametrize("codec", ["zstd", "zstd-checksum", "blosc", "gzip"])
def test_decoded_size_from_the_header(rng, codec, n):
    """Sizes around each width of zstd's frame content size field (1, 2, 4 bytes)."""
    make = {"zstd": lambda: numcodecs.Zstd(), "zstd-checksum": lambda: numcodecs.Zstd(
        checksum=True), "blosc": lambda: numcodecs.Blosc(), "gzip": lambda: numcodecs.GZip()}
    values = (rng.random(n) * 4).astype(np.float32)  # 4 n bytes, partly compressible
    c = make[codec]()
    assert _zarr_direct.decoded_size(c, np.frombuffer(c.encode(values), np.uint8)) == 4 * n


@pytest.mark.parametrize("fmt, compressor", CASES)
def test_a_chunk_of_the_wrong_size_is_an_error(rng, tmp_path, fmt, compressor):
    """As in zarr; numcodecs decoding a shorter chunk into the array left the rest of it
    as np.empty found it."""
    z = _array(zarr.storage.LocalStore(tmp_path / "data.zarr"), fmt, compressor, "float32")
    z[:3, :4] = random(rng, (3, 4), "float32")
    short = zarr.create_array(zarr.storage.LocalStore(tmp_path / "short.zarr"), shape=(2, 4),
                              chunks=(2, 4), dtype="float32", zarr_format=fmt,
                              compressors=z.compressors if fmt == 3 else z.metadata.compressor)
    short[...] = 1.0
    key = short.metadata.encode_chunk_key((0, 0))
    chunk = tmp_path / "data.zarr" / "group" / "image" / z.metadata.encode_chunk_key((0, 0))
    chunk.write_bytes((tmp_path / "short.zarr" / key).read_bytes())
    with pytest.raises(ValueError, match="holds 32 bytes; a \\(3, 4\\) float32 chunk has 48"):
        _zarr_direct.read_chunk(z, _zarr_direct.layout(z), (0, 0), (3, 4))
    with pytest.raises(Exception):  # noqa: B017 - zarr's own error, whichever it is
        z[:3, :4]


def _transposed(store):
    return zarr.create_array(store, shape=(4, 4), chunks=(2, 2), dtype="f4",
                             serializer=zarr.codecs.BytesCodec(),
                             filters=[zarr.codecs.TransposeCodec(order=(1, 0))])


@pytest.mark.parametrize("make", [
    pytest.param(lambda s: zarr.create_array(s, shape=(4, 4), chunks=(2, 2), shards=(4, 4),
                                             dtype="f4"), id="sharded"),
    pytest.param(_transposed, id="transposed"),
    pytest.param(lambda s: zarr.create_array(s, shape=(4, 4), chunks=(2, 2), dtype="f4",
                                             compressors=[zarr.codecs.ZstdCodec(),
                                                          zarr.codecs.Crc32cCodec()]),
                 id="checksum"),
    pytest.param(lambda s: zarr.create_array(s, shape=(4, 4), chunks=(2, 2), dtype=">f4"),
                 id="big-endian"),
    pytest.param(lambda s: zarr.create_array(s, shape=(4, 4), chunks=(2, 2), dtype="f4",
                                             zarr_format=2, order="F"), id="v2-fortran"),
    pytest.param(lambda s: zarr.create_array(s, shape=(4, 4), chunks=(2, 2), dtype="f4",
                                             zarr_format=2, filters=[numcodecs.Delta("f4")]),
                 id="v2-filters"),
    pytest.param(lambda s: zarr.create_array(s, shape=(4, 4), chunks=(2, 2), dtype="f4",
                                             zarr_format=2, compressors=numcodecs.LZMA()),
                 id="v2-other-compressor"),
    pytest.param(lambda s: zarr.create_array(s, shape=(4,), chunks=(2,), dtype="U3",
                                             zarr_format=2),
                 id="strings"),
    pytest.param(lambda s: np.zeros((4, 4)), id="not-zarr"),
])
def test_other_layouts_keep_zarrs_read(make):
    assert _zarr_direct.layout(make(zarr.storage.MemoryStore())) is None


def _culled_layers(lazy) -> list[str]:
    keys = set(dask.core.flatten(lazy.__dask_keys__()))
    return list(lazy.__dask_graph__().cull(keys).layers)


@pytest.mark.parametrize("halo_reads", ["reread", "hold"])
@pytest.mark.parametrize("source", ["path", "array"])
def test_zarr_chunks_are_read_directly(rng, tmp_path, source, halo_reads):
    """Both reads of a chunk are fftconv's own direct reads; from_zarr's tasks are left
    out (before: zarr's reads, a third slower at 2048² float32)."""
    x = random(rng, (40, 30), "float32")
    z = zarr.create_array(tmp_path / "image.zarr", shape=x.shape, chunks=(16, 8),
                          dtype="float32", fill_value=0.5)
    z[:16] = x[:16]
    z[32:] = x[32:]
    x[16:32] = 0.5  # those chunks are missing from the store
    image = da.from_zarr(str(tmp_path / "image.zarr") if source == "path" else z)
    k = random(rng, (7, 6), "float32")
    with fftconv.config.set(halo_reads=halo_reads):
        lazy = fftconv.convolve(image, k, boundary="reflect")
    layers = _culled_layers(lazy)
    assert any(name.startswith("fftconv-read-") for name in layers)
    assert any(name.startswith("fftconv-reread-") for name in layers) == (halo_reads == "reread")
    assert not any(name.startswith("from-zarr") for name in layers)
    assert_matches(lazy.compute(), reference(x, k, "same", "reflect"), "float32")


def test_part_chunks_keep_zarrs_read(rng, tmp_path):
    """Dask chunks that are not the store's chunks read through zarr, as before."""
    x = random(rng, (40, 30), "float64")
    z = zarr.create_array(tmp_path / "image.zarr", shape=x.shape, chunks=(16, 8),
                          dtype=x.dtype)
    z[...] = x
    k = random(rng, (5, 5), "float64")
    lazy = fftconv.convolve(da.from_zarr(z, chunks=(10, 12)), k, boundary="mirror")
    layers = _culled_layers(lazy)
    assert not any(name.startswith("fftconv-read-") for name in layers)
    assert any(name.startswith("fftconv-reread-") for name in layers)
    assert_matches(lazy.compute(), reference(x, k, "same", "mirror"), "float64")


def _from_zarr(x: np.ndarray, path) -> da.Array:
    """``x`` stored at ``path`` in 16² chunks, read back lazily in those chunks."""
    z = zarr.create_array(path, shape=x.shape, chunks=(16, 16), dtype=x.dtype)
    z[...] = x
    return da.from_zarr(str(path))


def test_direct_reads_in_worker_processes(rng, tmp_path):
    x = random(rng, (48, 40), "float64")
    k = random(rng, (7, 6), "float64")
    lazy = fftconv.correlate(_from_zarr(x, tmp_path / "image.zarr"), k, boundary="wrap")
    assert any(name.startswith("fftconv-read-") for name in _culled_layers(lazy))
    got = lazy.compute(scheduler="processes", num_workers=2)
    assert_matches(got, reference(x, k, "same", "wrap", correlate=True), "float64")


def test_direct_reads_and_writes_on_a_local_cluster(rng, tmp_path):
    """Worker processes of dask.distributed read the input's chunks and write the output's
    themselves, and the result is the reference."""
    distributed = pytest.importorskip("distributed")
    x = random(rng, (48, 40), "float32")
    k = random(rng, (7, 6), "float32")
    lazy = fftconv.convolve(_from_zarr(x, tmp_path / "image.zarr"), k, boundary="wrap")
    assert any(name.startswith("fftconv-read-") for name in _culled_layers(lazy))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        fftconv.write_image(lazy, tmp_path / "out.zarr")
    got = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...]
    assert_matches(got, reference(x, k, "same", "wrap"), "float32")


def _files(folder) -> dict:
    """Each file's bytes, a gzip member's MTIME (bytes 4-8: the second it was written,
    RFC 1952) set to zero: two writes a second apart differ there and nowhere else."""
    def timeless(data: bytes) -> bytes:
        return data[:4] + bytes(4) + data[8:] if data[:2] == b"\x1f\x8b" else data

    return {str(p.relative_to(folder)): timeless(p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt, compressor", CASES)
def test_every_chunk_writes_as_zarr_writes_it(rng, tmp_path, fmt, compressor, dtype):
    """The same files, byte for byte: edge chunks padded with the fill value, and a chunk
    that is all fill value left out, as zarr leaves it out."""
    values = _values(rng, (7, 10), dtype)
    values[3:6, 4:8] = np.asarray(3).astype(dtype)  # one whole chunk of the fill value
    lazy = da.from_array(values, chunks=(3, 4))
    ours, zarrs = (_array(zarr.storage.LocalStore(tmp_path / name), fmt, compressor, dtype)
                   for name in ("ours", "zarrs"))
    writer = _zarr_direct.ChunkWriter.of(ours)
    assert isinstance(writer, _zarr_direct.ChunkWriter)
    da.store(lazy, writer, lock=False)
    da.store(lazy, zarrs, lock=False)
    files = _files(tmp_path / "ours")
    assert files == _files(tmp_path / "zarrs")
    assert "group/image/" + ours.metadata.encode_chunk_key((1, 0)) in files
    assert "group/image/" + ours.metadata.encode_chunk_key((1, 1)) not in files
    np.testing.assert_array_equal(ours[...], values)


@pytest.mark.parametrize("fmt, compressor", [(2, "none"), (3, "zstd")])
def test_empty_chunks_are_written_when_the_array_says_so(rng, tmp_path, fmt, compressor):
    """An array made with ``config={"write_empty_chunks": True}`` stores its all-fill
    chunks too, in our writes as in zarr's (before: ours always left them out)."""
    values = _values(rng, (7, 10), "float32")
    values[3:6, 4:8] = 3
    lazy = da.from_array(values, chunks=(3, 4))
    ours, zarrs = (_array(zarr.storage.LocalStore(tmp_path / name), fmt, compressor, "float32",
                          config={"write_empty_chunks": True}) for name in ("ours", "zarrs"))
    da.store(lazy, _zarr_direct.ChunkWriter.of(ours), lock=False)
    da.store(lazy, zarrs, lock=False)
    files = _files(tmp_path / "ours")
    assert "group/image/" + ours.metadata.encode_chunk_key((1, 1)) in files
    assert files == _files(tmp_path / "zarrs")


@pytest.mark.parametrize("store", ["fsspec", "memory"])
def test_writes_to_other_stores(rng, tmp_path, store):
    values = random(rng, (7, 10), "float32")
    z = _array(_store(store, tmp_path), 3, "blosc", "float32", fill=np.nan)
    values[:3, :4] = np.nan  # a chunk of the fill value: NaN equals NaN
    da.store(da.from_array(values, chunks=(3, 4)), _zarr_direct.ChunkWriter.of(z), lock=False)
    np.testing.assert_array_equal(z[...], values)


def test_part_chunks_write_through_zarr(rng, tmp_path):
    """Blocks that are not one chunk each are zarr's to write (one at a time here: blocks
    sharing a chunk race, which write_image's on_a_grid prevents)."""
    values = random(rng, (7, 10), "float64")
    z = _array(zarr.storage.LocalStore(tmp_path / "data.zarr"), 3, "zstd", "float64")
    lazy = da.from_array(values, chunks=(5, 6))
    lazy.store(_zarr_direct.ChunkWriter.of(z), lock=False, scheduler="sync")
    np.testing.assert_array_equal(z[...], values)


def test_write_image_writes_chunks_directly(rng, tmp_path, monkeypatch):
    """Neither level of an OME-Zarr pyramid goes through zarr's writes (which this makes
    fail), and what lands reads back as zarr reads it."""
    values = random(rng, (64, 48), "float32")
    monkeypatch.setattr(zarr.Array, "__setitem__", _refuse)
    ome = {"axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
           "datasets": [{"path": "0", "coordinateTransformations": [
                            {"type": "scale", "scale": [1.0, 1.0]}]},
                        {"path": "1", "coordinateTransformations": [
                            {"type": "scale", "scale": [2.0, 2.0]}]}]}
    out = fftconv.write_image(da.from_array(values, chunks=16), tmp_path / "out.zarr", ome=ome)
    group = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(group["0"][...], values)
    np.testing.assert_allclose(group["1"][...],
                               values.reshape(32, 2, 24, 2).mean(axis=(1, 3)), rtol=1e-6)


def _refuse(self, index, value):
    raise AssertionError("zarr wrote a chunk")
