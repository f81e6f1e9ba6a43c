"""Output control from the command line: stored chunks, shards, compression, the NGFF
version, and --version."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fftconv
from fftconv import cli

zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def image(tmp_path, rng):
    x = rng.random((120, 100)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    return tmp_path / "in.npy", fftconv.convolve(x, np.ones((3, 3), np.float32) / 9,
                                                 boundary="reflect")


@pytest.mark.parametrize("compression, codec", [("none", None), ("zstd", "ZstdCodec"),
                                                ("gzip", "GzipCodec"),
                                                ("blosc-lz4", "BloscCodec")])
def test_stored_chunks_and_zarr_compression(tmp_path, capsys, image, compression, codec):
    source, want = image
    code, _, _ = _run(capsys, "convolve", source, "box:size=3", tmp_path / "out.zarr",
                      "--boundary", "reflect", "--chunks", "60", "--output-chunks", "32,48",
                      "--compression", compression)
    stored = zarr.open_array(str(tmp_path / "out.zarr"))
    assert code == 0 and stored.chunks == (32, 48)
    assert [type(c).__name__ for c in stored.compressors] == ([codec] if codec else [])
    np.testing.assert_allclose(stored[:], want, atol=1e-6)


def test_shards_hold_whole_chunks_each_written_by_one_task(tmp_path, capsys, image):
    source, want = image
    code, _, _ = _run(capsys, "convolve", source, "box:size=3", tmp_path / "out.zarr",
                      "--boundary", "reflect", "--output-chunks", "20,25", "--shards", "40,50")
    stored = zarr.open_array(str(tmp_path / "out.zarr"))
    assert code == 0 and stored.chunks == (20, 25) and stored.shards == (40, 50)
    np.testing.assert_allclose(stored[:], want, atol=1e-6)
    assert len(list((tmp_path / "out.zarr" / "c").rglob("*"))) == 3 + 3 * 2  # dirs + files
    code, _, err = _run(capsys, "convolve", source, "box:size=3", tmp_path / "bad.zarr",
                        "--shards", "40")
    assert code == 2 and "shards= needs chunks=" in err


@pytest.mark.parametrize("compression", ["deflate", "zstd", "lzw"])
def test_compressed_tiff_outputs(tmp_path, capsys, image, compression):
    source, want = image
    code, _, _ = _run(capsys, "convolve", source, "box:size=3", tmp_path / "out.tif",
                      "--boundary", "reflect", "--chunks", "50", "--compression", compression)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages[0]
        assert code == 0 and page.is_tiled and page.compression.name.lower().startswith(
            compression[:3])
        np.testing.assert_allclose(tif.asarray(), want, atol=1e-6)


def test_bad_compressions_are_one_line(tmp_path, capsys, image):
    source, _ = image
    for target, name in (("out.zarr", "deflate"), ("out.tif", "gzip"), ("out.npy", "zstd")):
        code, _, err = _run(capsys, "convolve", source, "box:size=3", tmp_path / target,
                            "--compression", name)
        assert code == 2 and len(err.strip().splitlines()) == 1 and name in err
        assert not (tmp_path / target).exists()


def test_ngff_version_04_for_older_readers(tmp_path, capsys, rng):
    ome = {"axes": [{"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"}],
           "datasets": [{"path": "0", "coordinateTransformations": [
               {"type": "scale", "scale": [0.5, 0.5]}]}]}
    fftconv.write_image(rng.random((40, 40)).astype(np.float32), tmp_path / "in.zarr", ome=ome)
    code, _, _ = _run(capsys, "convolve", tmp_path / "in.zarr", "gaussian:sigma=1",
                      tmp_path / "out.zarr", "--ngff-version", "0.4")
    assert code == 0 and (tmp_path / "out.zarr" / ".zattrs").is_file()
    attrs = json.loads((tmp_path / "out.zarr" / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"
    again = fftconv.open_image(tmp_path / "out.zarr", metadata=True)
    assert again.scale == (0.5, 0.5) and again.units == ("micrometer", "micrometer")


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out == f"fftconv {fftconv.__version__}\n"


def test_a_bioformats2raw_container_reads_series_0_or_the_one_asked(tmp_path, capsys, rng):
    """bioformats2raw's layout failed with "name one of its arrays: []"."""
    ome = {"axes": [{"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"}],
           "datasets": [{"path": "0", "coordinateTransformations": [
               {"type": "scale", "scale": [0.25, 0.25]}]}]}
    root = tmp_path / "plate.zarr"
    zarr.create_group(str(root), attributes={"bioformats2raw.layout": 3})
    images = [rng.random((30, 40)).astype(np.float32) for _ in range(2)]
    for i, image in enumerate(images):
        fftconv.write_image(image, root / str(i), ome=ome)
    k = np.ones((3, 3), np.float32) / 9
    code, _, _ = _run(capsys, "convolve", root, "box:size=3", tmp_path / "s0.zarr")
    assert code == 0
    np.testing.assert_allclose(fftconv.open_image(tmp_path / "s0.zarr").compute(),
                               fftconv.convolve(images[0], k), atol=1e-6)
    code, _, _ = _run(capsys, "convolve", root, "box:size=3", tmp_path / "s1.zarr",
                      "--series", "1")
    got = fftconv.open_image(tmp_path / "s1.zarr", metadata=True)
    assert code == 0 and got.scale == (0.25, 0.25)
    np.testing.assert_allclose(got.data.compute(), fftconv.convolve(images[1], k), atol=1e-6)


# -- where data lives: URLs ---------------------------------------------------------------------

def test_file_urls_are_local_paths(tmp_path, capsys, rng):
    """``file://`` paths became ``https:/…``-like "does not exist" errors."""
    x = rng.random((40, 30)).astype(np.float32)
    fftconv.write_image(x, f"file://{tmp_path}/in.zarr")
    code, _, err = _run(capsys, "convolve", f"file://{tmp_path}/in.zarr", "box:size=3",
                        f"file://{tmp_path}/out.zarr")
    assert code == 0, err
    np.testing.assert_allclose(fftconv.open_image(f"file://{tmp_path}/out.zarr").compute(),
                               fftconv.convolve(x, np.ones((3, 3)) / 9), atol=1e-6)


def test_an_fsspec_store_in_and_out(tmp_path, capsys, rng):
    pytest.importorskip("fsspec")
    x = rng.random((60, 50)).astype(np.float32)
    fftconv.write_image(x, "memory://fftconv-test/in.zarr", chunks=(32, 25))
    try:
        code, _, err = _run(capsys, "convolve", "memory://fftconv-test/in.zarr", "box:size=3",
                            "memory://fftconv-test/out.zarr", "--boundary", "reflect")
        assert code == 0, err
        got = fftconv.open_image("memory://fftconv-test/out.zarr").compute()
        np.testing.assert_allclose(got, fftconv.convolve(x, np.ones((3, 3)) / 9,
                                                         boundary="reflect"), atol=1e-6)
        code, _, err = _run(capsys, "convolve", "memory://fftconv-test/in.zarr", "box:size=3",
                            "memory://fftconv-test/out.zarr")
        assert code == 2 and "exists" in err
        code, _, err = _run(capsys, "convolve", "memory://fftconv-test/missing.zarr",
                            "box:size=3", tmp_path / "o.npy")
        assert code == 2 and "does not exist" in err
        code, _, err = _run(capsys, "convolve", "memory://fftconv-test/in.tif", "box:size=3",
                            tmp_path / "o.npy")
        assert code == 2 and "only zarr stores" in err
    finally:
        import fsspec

        fsspec.filesystem("memory").rm("/fftconv-test", recursive=True)


def test_a_failed_write_to_a_store_removes_what_it_wrote(tmp_path, rng):
    fsspec = pytest.importorskip("fsspec")
    da = pytest.importorskip("dask.array")

    def fail_last(block, block_info=None):
        if block_info[0]["chunk-location"] == (1, 1):
            raise RuntimeError("a task failed")
        return block

    lazy = da.ones((40, 40), chunks=20, dtype=np.float32).map_blocks(
        fail_last, meta=np.empty((0, 0), np.float32))
    with pytest.raises(RuntimeError, match="a task failed"):
        fftconv.write_image(lazy, "memory://fftconv-fail/out.zarr", scheduler="synchronous")
    assert not fsspec.filesystem("memory").exists("/fftconv-fail/out.zarr")


def test_a_bad_request_never_removes_the_store_it_would_replace(rng):
    """With overwrite, a remote output was removed before the request was checked: a bad
    compression name cost the old output."""
    fsspec = pytest.importorskip("fsspec")
    old = rng.random((20, 20)).astype(np.float32)
    fftconv.write_image(old, "memory://fftconv-keep/out.zarr")
    try:
        with pytest.raises(ValueError, match="compression='bogus'"):
            fftconv.write_image(old * 2, "memory://fftconv-keep/out.zarr", overwrite=True,
                                compression="bogus")
        np.testing.assert_array_equal(
            fftconv.open_image("memory://fftconv-keep/out.zarr").compute(), old)
    finally:
        fsspec.filesystem("memory").rm("/fftconv-keep", recursive=True)
