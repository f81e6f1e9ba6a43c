"""fftconv.open_image and fftconv.write_image: lazy, by path, atomic, every format."""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
from conftest import ome_image, ome_tiff_pixels, ome_transforms, random
from reference import assert_matches, reference

import fftconv
from fftconv._io import on_a_grid
from fftconv._io.file_axes import axis_names, default_axes
from fftconv._io.ome import source_metadata

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
pytest.importorskip("tifffile")

FORMATS = ["a.zarr", "a.npy", "a.tif"]


@pytest.mark.parametrize("name", FORMATS)
def test_write_then_open_round_trips(tmp_path, rng, name):
    x = random(rng, (90, 70), "float32")
    path = fftconv.write_image(da.from_array(x, chunks=32), tmp_path / name)
    image = fftconv.open_image(path, chunks=40)
    assert isinstance(image, da.Array) and image.chunks == ((40, 40, 10), (40, 30))
    np.testing.assert_array_equal(image.compute(), x)


def test_a_numpy_array_is_written_too(tmp_path, rng):
    x = random(rng, (20, 30), "float64")
    np.testing.assert_array_equal(np.load(fftconv.write_image(x, tmp_path / "x.npy")), x)


def test_a_memory_mapped_input_is_not_loaded_when_opened(tmp_path):
    """dask's own from_array copies a np.memmap whole when the array is made (dask #11850)."""
    np.save(tmp_path / "big.npy", np.zeros((512, 512), np.float32))
    image = fftconv.open_image(tmp_path / "big.npy", chunks=128)
    constants = [v for v in dict(image.__dask_graph__()).values()
                 if isinstance(v, np.ndarray) and v.size > 1]
    assert constants == []


@pytest.mark.parametrize("kind", ["npy", "tiled tif", "small zarr chunks"])
def test_auto_chunks_are_blocks_of_about_16_mib(tmp_path, kind):
    """Dask's own "auto" took 128 MiB blocks: a 16384² TIFF in 512² tiles ⊛ 201² ran
    23.2 s at 1452 MiB that way, 17.6 s at 329 MiB in 2048² blocks."""
    import tifffile

    x = np.zeros((4096, 4096), np.float32)  # 64 MiB: one block of dask's "auto"
    if kind == "npy":
        path = tmp_path / "x.npy"
        np.save(path, x)
    elif kind == "tiled tif":
        path = tmp_path / "x.tif"
        tifffile.imwrite(path, x, tile=(512, 512))
    else:
        path = tmp_path / "x.zarr"
        zarr.create_array(str(path), shape=x.shape, chunks=(512, 512), dtype=x.dtype)
    image = fftconv.open_image(path)
    assert image.chunksize == (2048, 2048)
    assert fftconv.open_image(path, chunks=4096).chunksize == (4096, 4096)


@pytest.mark.parametrize("compression", ["lzw", "jpeg", "zstd", "packbits"])
def test_compressed_tiffs_are_read(tmp_path, rng, compression):
    """Microscopes and slide scanners write LZW, JPEG or zstd TIFFs: without imagecodecs
    (tifffile's codecs) open_image could not read them ("requires the 'imagecodecs'
    package")."""
    import tifffile

    x = (random(rng, (300, 200), "float64") * 100 + 100).astype(np.uint8)
    tile = None if compression == "packbits" else (64, 64)
    tifffile.imwrite(tmp_path / "x.tif", x, compression=compression, tile=tile)
    stored = tifffile.imread(tmp_path / "x.tif")  # JPEG is lossy: what the file holds
    k = random(rng, (5, 4), "float32")
    got = fftconv.convolve(fftconv.open_image(tmp_path / "x.tif", chunks=100), k,
                           boundary="reflect")
    assert_matches(got.compute(), reference(stored, k, "same", "reflect"), "float32")


def test_auto_chunks_never_cut_a_large_stored_chunk(tmp_path):
    """A compressed TIFF in one strip: a dask chunk of part of it would decode it all."""
    import tifffile

    path = tmp_path / "strip.tif"
    tifffile.imwrite(path, np.zeros((3000, 3000), np.float32), compression="zlib",
                     rowsperstrip=3000)
    assert fftconv.open_image(path).chunksize == (3000, 3000)


@pytest.mark.parametrize("name", FORMATS)
def test_an_existing_output_needs_overwrite(tmp_path, name):
    path = fftconv.write_image(np.ones((8, 8)), tmp_path / name)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fftconv.write_image(np.zeros((8, 8)), path)
    np.testing.assert_array_equal(fftconv.open_image(path).compute(), 1)
    fftconv.write_image(np.zeros((8, 8)), path, overwrite=True)
    np.testing.assert_array_equal(fftconv.open_image(path).compute(), 0)


@pytest.mark.parametrize("name", FORMATS)
def test_an_output_may_replace_its_own_input(tmp_path, rng, name):
    x = random(rng, (64, 64), "float32")
    path = fftconv.write_image(x, tmp_path / name)
    kernel = np.ones((3, 3), np.float32) / 9
    blurred = fftconv.convolve(fftconv.open_image(path, chunks=16), kernel, boundary="reflect")
    fftconv.write_image(blurred, path, overwrite=True)
    np.testing.assert_allclose(fftconv.open_image(path).compute(),
                               fftconv.convolve(x, kernel, boundary="reflect"), atol=1e-6)


@pytest.mark.parametrize("case, error, message", [
    ("a.bmp", ValueError, "unknown format"),
    ("missing/a.zarr", FileNotFoundError, "does not exist"),
])
def test_bad_outputs(tmp_path, case, error, message):
    with pytest.raises(error, match=message):
        fftconv.write_image(np.ones(3), tmp_path / case)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case, message", [("a.npy", "does not exist"),
                                           ("junk.npy", "could not be read"),
                                           ("a.png", "unknown format")])
def test_bad_inputs(tmp_path, case, message):
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=message):
        fftconv.open_image(tmp_path / case)


def test_zarr_output_of_ragged_blocks_loses_nothing(tmp_path, rng):
    """A ``full`` convolution's blocks end 36, 28, 8 on a zarr grid of 36: the last two
    shared a zarr chunk, and on threads one block's write was lost (20 runs of 20)."""
    x = random(rng, (1000, 1000), "float32")
    k = random(rng, (9, 9), "float32")
    lazy = fftconv.convolve(da.from_array(x, chunks=36), k, mode="full")
    assert lazy.chunks[0][-3:] == (36, 28, 8)
    path = fftconv.write_image(lazy, tmp_path / "o.zarr", num_workers=8)
    np.testing.assert_allclose(zarr.open_array(str(path), mode="r")[:],
                               fftconv.convolve(x, k, mode="full"), atol=1e-4)


def test_on_a_grid_rechunks_only_irregular_blocks():
    regular = da.zeros((100, 90), chunks=(30, 40))
    assert on_a_grid(regular) is regular
    ragged = da.zeros((100, 90), chunks=((30, 30, 28, 12), (40, 40, 10)))
    assert on_a_grid(ragged).chunks == ((30, 30, 30, 10), (40, 40, 10))


def test_a_tiff_pyramid_reads_its_full_resolution(tmp_path, rng):
    """OME-TIFF and slide-scanner pyramids: tifffile's store is a group of levels (before,
    'could not be read: 'Group' object has no attribute 'shape'')."""
    import tifffile

    x = random(rng, (40, 30), "float32")
    with tifffile.TiffWriter(tmp_path / "pyramid.tif") as tif:
        tif.write(x, subifds=1, tile=(16, 16), compression="zlib")
        tif.write(x[::2, ::2], subfiletype=1, tile=(16, 16), compression="zlib")
    np.testing.assert_array_equal(fftconv.open_image(tmp_path / "pyramid.tif").compute(), x)


def test_a_compressed_tiff_stack(tmp_path, rng):
    import tifffile

    x = random(rng, (4, 40, 30), "float32")
    tifffile.imwrite(tmp_path / "stack.tif", x, compression="zlib", photometric="minisblack")
    image = fftconv.open_image(tmp_path / "stack.tif", chunks=(1, 16, 16))
    np.testing.assert_array_equal(image.compute(), x)


def test_tiff_stores_no_longer_used_are_closed(tmp_path, rng):
    """The open stores of compressed TIFFs are cached by path; one pushed out of the cache,
    or left stale by a rewritten file, is closed (before: its file handle was left to the
    garbage collector, an unclosed-file ResourceWarning, an error under ``-W error``)."""
    import gc
    import os
    import warnings

    import tifffile

    x = random(rng, (40, 30), "float32")
    paths = [tmp_path / f"{i}.tif" for i in range(6)]
    for path in paths:
        tifffile.imwrite(path, x, compression="zlib", tile=(16, 16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for path in paths:  # more files than the cache keeps
            np.testing.assert_array_equal(fftconv.open_image(path).compute(), x)
        tifffile.imwrite(paths[-1], x + 1, compression="zlib", tile=(16, 16))
        os.utime(paths[-1], ns=(1, 1))  # a new stamp even where the clock is coarse
        np.testing.assert_array_equal(fftconv.open_image(paths[-1]).compute(), x + 1)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_an_ome_zarr_reads_its_full_resolution(tmp_path, rng, version):
    """OME-Zarr stores an image as a group of levels (before: "could not be read")."""
    x = random(rng, (64, 48), "float32")
    group = zarr.open_group(str(tmp_path / "cells.zarr"), mode="w")
    scales = [{"datasets": [{"path": "0"}, {"path": "1"}]}]
    group.attrs.update({"ome": {"version": version, "multiscales": scales}}
                       if version == "0.5" else {"multiscales": scales})
    group.create_array("0", shape=x.shape, chunks=(32, 32), dtype=x.dtype)[...] = x
    group.create_array("1", shape=(32, 24), chunks=(32, 32), dtype=x.dtype)[...] = x[::2, ::2]
    np.testing.assert_array_equal(fftconv.open_image(tmp_path / "cells.zarr").compute(), x)
    np.testing.assert_array_equal(fftconv.open_image(tmp_path / "cells.zarr" / "1").compute(),
                                  x[::2, ::2])


def test_a_plain_zarr_group_names_its_arrays(tmp_path):
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w").create_array("a", shape=(3,),
                                                                        dtype="f4")
    with pytest.raises(ValueError, match=r"name one of its arrays: \['a'\]"):
        fftconv.open_image(tmp_path / "g.zarr")


@pytest.mark.parametrize("fmt", [2, 3])
def test_an_output_named_inside_a_zarr_group_is_one_of_its_arrays(tmp_path, rng, fmt):
    """``data.zarr/blurred`` (no extension) is written as the group's array ``blurred``, in
    the group's zarr format, beside the input it came from."""
    x = random(rng, (40, 30), "float32")
    group = zarr.open_group(str(tmp_path / "data.zarr"), mode="w", zarr_format=fmt)
    group.create_array("raw", shape=x.shape, chunks=(16, 16), dtype=x.dtype)[...] = x
    k = random(rng, (5, 4), "float32")
    lazy = fftconv.convolve(fftconv.open_image(tmp_path / "data.zarr" / "raw"), k,
                            boundary="reflect")
    fftconv.write_image(lazy, tmp_path / "data.zarr" / "blurred", dimension_names=("y", "x"))
    group = zarr.open_group(str(tmp_path / "data.zarr"), mode="r")
    assert sorted(group.array_keys()) == ["blurred", "raw"]
    assert group["blurred"].metadata.zarr_format == fmt
    assert axis_names(tmp_path / "data.zarr" / "blurred", 2) == (("y", True), ("x", True))
    got = fftconv.open_image(tmp_path / "data.zarr" / "blurred").compute()
    assert_matches(got, reference(x, k, "same", "reflect"), "float32")


@pytest.mark.parametrize("consolidated", [True, False])
@pytest.mark.parametrize("fmt", [2, 3])
def test_a_consolidated_group_lists_the_array_written_into_it(tmp_path, fmt, consolidated):
    """A group whose metadata is consolidated is consolidated again, with the new array
    (before: opening the group read the old index, and ``group["blurred"]`` was a
    KeyError); one that is not stays so."""
    folder = tmp_path / "data.zarr"
    zarr.open_group(str(folder), mode="w", zarr_format=fmt).create_array(
        "raw", shape=(6, 5), dtype="f4")
    if consolidated:
        with pytest.warns(UserWarning, match="[Cc]onsolidated") if fmt == 3 else \
                contextlib.nullcontext():
            zarr.consolidate_metadata(str(folder))
    fftconv.write_image(np.full((6, 5), 2, np.float32), folder / "blurred")
    group = zarr.open_group(str(folder), mode="r")
    np.testing.assert_array_equal(group["blurred"][...], 2)
    assert sorted(group.array_keys()) == ["blurred", "raw"]
    assert (group.metadata.consolidated_metadata is not None) == consolidated


def test_an_output_with_no_extension_outside_a_zarr_group_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(ValueError, match=r"unknown format '\(none\)'.*image.zarr/name"):
        fftconv.write_image(np.ones((4, 4)), tmp_path / "data" / "blurred")
    assert list((tmp_path / "data").iterdir()) == []


CYX = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
       {"name": "x", "type": "space"}]


@pytest.mark.parametrize(("version", "axes", "where"), [
    ("0.4", CYX, "cells.zarr"),
    ("0.5", CYX, "cells.zarr"),
    ("0.5", CYX, "cells.zarr/0"),  # one level of the group, named
    ("0.3", ["c", "y", "x"], "cells.zarr"),  # names only
    ("0.4", [{"name": "c"}, {"name": "y"}, {"name": "x"}], "cells.zarr"),  # no types
])
def test_ome_zarr_axes(tmp_path, version, axes, where):
    ome_image(tmp_path / "cells.zarr", (2, 8, 6), version, axes, {"0": None}, 3)
    assert axis_names(tmp_path / where, 3) == (("c", False), ("y", True), ("x", True))


def test_zarr_array_dimension_names(tmp_path):
    zarr.create_array(str(tmp_path / "a.zarr"), shape=(8, 6, 3), dtype="f4",
                      dimension_names=("y", "x", "band"))
    assert axis_names(tmp_path / "a.zarr", 3) == (("y", True), ("x", True), ("band", False))
    zarr.create_array(str(tmp_path / "xr.zarr"), shape=(3, 8), dtype="f4",
                      zarr_format=2, attributes={"_ARRAY_DIMENSIONS": ["time", "X"]})
    assert axis_names(tmp_path / "xr.zarr", 2) == (("time", False), ("X", True))


@pytest.mark.parametrize(("shape", "options", "letters"), [
    ((8, 6, 3), {"photometric": "rgb"}, "YXS"),
    ((4, 8, 6), {"photometric": "minisblack"}, "QYX"),
    ((2, 4, 8, 6), {"photometric": "minisblack", "metadata": {"axes": "CZYX"}}, "CZYX"),
    ((2, 4, 8, 6), {"imagej": True, "metadata": {"axes": "ZCYX"}}, "ZCYX"),
    ((3, 32, 32), {"tile": (16, 16), "compression": "zlib", "photometric": "minisblack",
                   "metadata": {"axes": "TYX"}}, "TYX"),
])
def test_tiff_axes(tmp_path, shape, options, letters):
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.zeros(shape, np.float32), **options)
    assert fftconv.open_image(tmp_path / "a.tif").shape == shape
    assert axis_names(tmp_path / "a.tif", len(shape)) == tuple(
        (letter, letter in "XYZ") for letter in letters)


def test_files_that_state_no_axes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((8, 6, 3)))
    zarr.create_array(str(tmp_path / "a.zarr"), shape=(8, 6, 3), dtype="f4")
    ome_image(tmp_path / "g.zarr", (8, 6, 3), "0.4", CYX[1:], {"0": None}, 3)  # 2 axes for 3
    for name in ("a.npy", "a.zarr", "g.zarr"):
        assert axis_names(tmp_path / name, 3) is None


@pytest.mark.parametrize(("axes", "kernel_ndim", "expected"), [
    (CYX, 2, (1, 2)),
    ([{"name": n, "type": "space"} for n in "zyx"], 3, (0, 1, 2)),
])
def test_default_axes_are_the_space_axes(tmp_path, axes, kernel_ndim, expected):
    ome_image(tmp_path / "g.zarr", (2, 8, 6), "0.4", axes, {"0": None}, 3)
    chosen, why = default_axes(axis_names(tmp_path / "g.zarr", 3), 3, kernel_ndim)
    assert chosen == expected and "space axes" in why


@pytest.mark.parametrize(("named", "kernel_ndim", "message"), [
    ((("z", True), ("y", True), ("x", True)), 2, r"\(z, y, x\), 3 of them space"),
    ((("c", False), ("y", True), ("x", True)), 4, "2 of them space"),
    (None, 2, "name the image's axes"),
])
def test_default_axes_refuses_to_guess(named, kernel_ndim, message):
    with pytest.raises(ValueError, match=message):
        default_axes(named, 3, kernel_ndim)


@pytest.mark.parametrize(("names", "kept"), [
    (("c", "y", "x"), {"a.zarr": ("c", "y", "x"), "a.tif": ("C", "Y", "X")}),
    (("band", "y", "x"), {"a.zarr": ("band", "y", "x"), "a.tif": ("Q", "Y", "X")}),
])
def test_written_dimension_names(tmp_path, names, kept):
    for name in FORMATS:
        fftconv.write_image(np.ones((2, 8, 6), np.float32), tmp_path / name,
                            dimension_names=names)
        named = axis_names(tmp_path / name, 3)
        assert (None if named is None else tuple(n for n, _ in named)) == kept.get(name), name


def test_dimension_names_need_one_per_axis(tmp_path):
    with pytest.raises(ValueError, match="2 names for 3 axes"):
        fftconv.write_image(np.ones((2, 8, 6)), tmp_path / "a.zarr", dimension_names="yx")
    assert list(tmp_path.iterdir()) == []


def _level(path, *scale, origin=None):
    return {"path": path, "coordinateTransformations": ome_transforms(*scale, origin=origin)}


def _entry(version=None, **extra):
    entry = {"axes": CYX, "datasets": [_level("0", 1.0, 0.5, 0.25, origin=(0.0, 10.0, 20.0))],
             **extra}
    return entry if version is None else {"version": version, **entry}


@pytest.mark.parametrize("version", ["0.4", "0.5", None])
def test_an_ome_zarr_output(tmp_path, rng, version):
    """ome= writes an OME-Zarr image group that the NGFF models accept (before: no way to)."""
    x = random(rng, (2, 40, 30), "float32")
    path = fftconv.write_image(da.from_array(x, chunks=(1, 16, 16)), tmp_path / "o.zarr",
                               ome=_entry(version, name="cells"))
    group = zarr.open_group(str(path), mode="r")
    assert group.metadata.zarr_format == (2 if version == "0.4" else 3)
    np.testing.assert_array_equal(fftconv.open_image(path).compute(), x)
    assert axis_names(path, 3) == (("c", False), ("y", True), ("x", True))
    assert axis_names(path / "0", 3) == (("c", False), ("y", True), ("x", True))
    if version != "0.4":  # NGFF 0.5: the array's dimension names are the axes' names
        assert group["0"].metadata.dimension_names == ("c", "y", "x")
    models = pytest.importorskip("ome_zarr_models")
    image = (models.v04 if version == "0.4" else models.v05).image.Image.from_zarr(group)
    assert image is not None


@pytest.mark.parametrize("name", ["o.tif", "o.tiff"])
def test_an_ome_tiff_output(tmp_path, rng, name):
    """ome= on a TIFF writes OME-TIFF pixel sizes, which fftconv, tifffile and OME-XML read
    (before: ValueError, no way to keep them)."""
    from fftconv._io.ome import source_metadata

    x = random(rng, (2, 40, 30), "float32")
    entry = _entry()
    entry["axes"] = [CYX[0], *({**a, "unit": "micrometer"} for a in CYX[1:])]
    path = fftconv.write_image(da.from_array(x, chunks=(1, 16, 16)), tmp_path / name, ome=entry)
    np.testing.assert_array_equal(fftconv.open_image(path).compute(), x)
    letters, pixels = ome_tiff_pixels(path)  # asserts the file is an OME-TIFF
    assert letters == "CYX"
    assert (pixels["PhysicalSizeY"], pixels["PhysicalSizeX"]) == (0.5, 0.25)
    assert pixels["PhysicalSizeXUnit"] == pixels["PhysicalSizeYUnit"] == "µm"
    _, scale, level = source_metadata(path)
    assert scale["axes"] == entry["axes"]
    assert level["coordinateTransformations"] == [{"type": "scale", "scale": [1.0, 0.5, 0.25]}]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_an_ome_zarr_pyramid(tmp_path, rng, version):
    """Datasets after the first are coarser levels, each the mean of the level before
    (before: ValueError, one level only)."""
    x = random(rng, (2, 45, 37), "float32")
    levels = [_level("0", 1.0, 0.5, 0.25, origin=(0, 10, 20)),
              _level("1", 1.0, 1.0, 0.5, origin=(0, 10.25, 20.125)),
              _level("2", 1.0, 3.0, 1.5, origin=(0, 11.25, 20.625))]
    path = fftconv.write_image(da.from_array(x, chunks=(1, 16, 16)), tmp_path / "o.zarr",
                               ome={**_entry(version), "datasets": levels})
    group = zarr.open_group(str(path), mode="r")
    one = x[:, :44, :36].reshape(2, 22, 2, 18, 2).mean(axis=(2, 4))
    two = one[:, :21, :18].reshape(2, 7, 3, 6, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(group["1"][:], one, rtol=1e-6)
    np.testing.assert_allclose(group["2"][:], two, rtol=1e-6)
    assert group["2"].dtype == np.float32 and group["2"].chunks == (1, 7, 6)
    np.testing.assert_array_equal(group["0"][:], x)
    models = pytest.importorskip("ome_zarr_models")
    image = (models.v04 if version == "0.4" else models.v05).image.Image.from_zarr(group)
    assert image is not None


def test_an_ome_tiff_pyramid(tmp_path, rng):
    """An OME-TIFF's coarser levels are reduced images in SubIFDs, each contiguous (before:
    ValueError, one level only); reading it back gives the same entry's levels."""
    import tifffile

    x = random(rng, (2, 45, 37), "float32")
    levels = [_level("0", 1.0, 0.5, 0.25), _level("1", 1.0, 1.0, 0.5),
              _level("2", 1.0, 3.0, 1.5)]
    path = fftconv.write_image(da.from_array(x, chunks=(1, 16, 16)), tmp_path / "o.tif",
                               ome={**_entry(), "datasets": levels})
    one = x[:, :44, :36].reshape(2, 22, 2, 18, 2).mean(axis=(2, 4))
    two = one[:, :21, :18].reshape(2, 7, 3, 6, 3).mean(axis=(2, 4))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and len(tif.series) == 1 and tif.series[0].axes == "CYX"
        found = [level.asarray() for level in tif.series[0].levels]
        assert all(level.dataoffset is not None for level in tif.series[0].levels)  # contiguous
    np.testing.assert_array_equal(found[0], x)
    np.testing.assert_allclose(found[1], one, rtol=1e-6)
    np.testing.assert_allclose(found[2], two, rtol=1e-6)
    np.testing.assert_array_equal(fftconv.open_image(path).compute(), x)
    _, entry, _ = source_metadata(path)
    assert [d["coordinateTransformations"] for d in entry["datasets"]] == [
        d["coordinateTransformations"] for d in levels]


def test_an_ome_entry_without_transformations_gets_a_unit_scale(tmp_path):
    """NGFF requires each level's scale."""
    path = fftconv.write_image(np.ones((2, 4, 3), np.float32), tmp_path / "o.zarr",
                               ome={"axes": CYX, "datasets": [{"path": "0"}]})
    (dataset,) = zarr.open_group(str(path)).attrs["ome"]["multiscales"][0]["datasets"]
    assert dataset["coordinateTransformations"] == [{"type": "scale", "scale": [1.0] * 3}]


@pytest.mark.parametrize(("target", "ome", "names", "message"), [
    ("o.npy", _entry(), None, "the output is a .npy file"),
    ("o.zarr", {**_entry(), "axes": CYX[1:]}, None, "one {'name': ...} per axis"),
    ("o.zarr", {**_entry(), "datasets": [{"path": "0"}, {"path": "1"}]}, None,
     "level '1': its scale None is not a whole multiple"),
    ("o.zarr", {**_entry(), "datasets": [{"path": "0"}, _level("1", 1.0, 0.75, 0.5)]}, None,
     "level '1': its scale [1.0, 0.75, 0.5] is not a whole multiple"),
    ("o.zarr", {**_entry(), "datasets": [{"path": "0"}, _level("1", 1.0, 8.0, 8.0)]}, None,
     "level '1' would be empty: (2, 4, 3) pixels averaged over [1, 8, 8]"),
    ("o.zarr", {**_entry(), "datasets": [{"path": "0"}, _level("0", 1.0, 2.0, 2.0)]}, None,
     "each with a 'path' of its own"),
    ("o.zarr", {**_entry(), "datasets": [{}]}, None, "one level or more, each with a 'path'"),
    ("o.zarr", _entry("0.3"), None, "version '0.3' is not one of"),
    ("o.zarr", _entry(), ("t", "y", "x"), "differ from ome='s axes"),
    ("o.tif", {**_entry(), "axes": [{"name": "y"}, {"name": "c"}, {"name": "x"}]}, None,
     "are not OME-TIFF's"),  # y, x, c of 3 here is an RGB OME-TIFF
    ("o.tif", {**_entry(), "axes": [{"name": "q"}, {"name": "y"}, {"name": "x"}]}, None,
     "are not OME-TIFF's"),
])
def test_bad_ome_entries(tmp_path, target, ome, names, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fftconv.write_image(np.ones((2, 4, 3), np.float32), tmp_path / target, ome=ome,
                            dimension_names=names)
    assert list(tmp_path.iterdir()) == []
