"""fftconv._io.tiff_scale: a TIFF's pixel sizes (OME-TIFF, ImageJ) as an NGFF entry, and back."""

from __future__ import annotations

import numpy as np
import pytest

from fftconv._io.ome import source_metadata
from fftconv._io.pyramid import shape_ratio
from fftconv._io.tiff_scale import ome_tiff_letters, ome_tiff_metadata, tiff_source

tifffile = pytest.importorskip("tifffile")


def _found(path):
    """tiff_source's axes as (name, type, unit) and its scale."""
    found = tiff_source(path)
    if found is None:
        return None
    _, entry, level = found
    axes = [(a["name"], a["type"], a.get("unit")) for a in entry["axes"]]
    (scale,) = level["coordinateTransformations"]
    return axes, scale["scale"]


def test_ome_tiff_sizes_and_units(tmp_path):
    metadata = {"axes": "TZYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5,
                "PhysicalSizeZ": 2.0, "PhysicalSizeZUnit": "mm", "TimeIncrement": 150,
                "TimeIncrementUnit": "ms"}
    tifffile.imwrite(tmp_path / "a.ome.tif", np.zeros((2, 3, 8, 6), np.float32),
                     metadata=metadata)
    assert _found(tmp_path / "a.ome.tif") == (
        [("t", "time", "millisecond"), ("z", "space", "millimeter"),
         ("y", "space", "micrometer"), ("x", "space", "micrometer")],  # µm: OME's default
        [150.0, 2.0, 0.5, 0.25])
    assert source_metadata(tmp_path / "a.ome.tif")[0] == "0.5"


def _pyramid(path, shapes, **metadata):
    """An OME-TIFF of zeros with a reduced image (SubIFD) of each of ``shapes[1:]``."""
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.zeros(shapes[0], np.float32), subifds=len(shapes) - 1, tile=(16, 16),
                  photometric="minisblack", metadata=metadata)
        for shape in shapes[1:]:
            tif.write(np.zeros(shape, np.float32), subfiletype=1, tile=(16, 16),
                      photometric="minisblack")


def test_an_ome_tiff_pyramid_gives_a_level_each(tmp_path):
    """The levels' scales follow from their shapes (before: one level)."""
    _pyramid(tmp_path / "a.ome.tif", [(2, 101, 77), (2, 51, 38), (2, 25, 19), (2, 10, 6)],
             axes="CYX", PhysicalSizeX=0.25, PhysicalSizeY=0.5)
    _, entry, level = tiff_source(tmp_path / "a.ome.tif")
    assert level is entry["datasets"][0]
    assert [(d["path"], d["coordinateTransformations"]) for d in entry["datasets"]] == [
        (str(i), [{"type": "scale", "scale": [1.0, 0.5 * 2**i, 0.25 * 2**i]}])
        for i in range(3)]  # 25 -> 10 is no whole factor: the pyramid ends there


@pytest.mark.parametrize("finer, coarser, factors", [
    ((2, 101, 77), (2, 51, 38), [1, 2, 2]), ((100, 100), (25, 50), [4, 2]),
    ((2, 101, 77), (2, 50, 39), [1, 2, 2]), ((101,), (40,), None), ((8, 8), (8, 8), None),
    ((8, 8), (4,), None), ((8, 8), (0, 4), None), ((3, 8), (3, 1), [1, 8])])
def test_shape_ratio(finer, coarser, factors):
    assert shape_ratio(finer, coarser) == factors


def test_an_ome_tiff_channel_axis_has_no_size(tmp_path):
    tifffile.imwrite(tmp_path / "a.ome.tif", np.zeros((2, 8, 6), np.float32),
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25})
    assert _found(tmp_path / "a.ome.tif") == (
        [("c", "channel", None), ("y", "space", "micrometer"), ("x", "space", "micrometer")],
        [1.0, 0.25, 0.25])


@pytest.mark.parametrize(("unit", "named"), [("um", "micrometer"), ("micron", "micrometer"),
                                             ("\\u00B5m", "micrometer"), ("nm", "nanometer"),
                                             ("furlong", None)])
def test_imagej_sizes(tmp_path, unit, named):
    """Resolution tags are pixels per unit; spacing is z's size; the unit is the description's."""
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 6), np.float32), imagej=True,
                     resolution=(4.0, 2.0), metadata={"axes": "ZYX", "spacing": 1.5,
                                                       "unit": unit})
    axes, scale = _found(tmp_path / "a.tif")
    assert axes == [(name, "space", named) for name in "zyx"]
    assert scale == [1.5, 0.5, 0.25]


def test_imagej_frame_interval(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 8, 6), np.float32), imagej=True,
                     resolution=(2.0, 2.0), metadata={"axes": "TYX", "finterval": 0.5,
                                                       "unit": "um"})
    assert _found(tmp_path / "a.tif") == (
        [("t", "time", "second"), ("y", "space", "micrometer"), ("x", "space", "micrometer")],
        [0.5, 0.5, 0.5])


@pytest.mark.parametrize("options", [
    {"imagej": True, "resolution": (2.0, 2.0)},  # ImageJ without a unit: uncalibrated
    {"imagej": True, "resolution": (2.0, 2.0), "metadata": {"unit": "pixel"}},
    {"resolution": (300, 300), "resolutionunit": "INCH"},  # a plain TIFF's dpi: no pixel size
    {"metadata": {"axes": "YX"}},  # tifffile's own description: names only
])
def test_tiffs_without_pixel_sizes(tmp_path, options):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 6), np.float32), **options)
    assert tiff_source(tmp_path / "a.tif") is None


def test_rgb_samples_are_the_channel_axis(tmp_path):
    """A slide's or a photo's RGB (YXS) keeps its pixel sizes: before, its samples were
    "no NGFF axis" and it stated none, so a kernel in µm was refused."""
    tifffile.imwrite(tmp_path / "rgb.ome.tif", np.zeros((8, 6, 3), np.uint8),
                     photometric="rgb", metadata={"PhysicalSizeX": 0.5})
    _, entry, dataset = tiff_source(tmp_path / "rgb.ome.tif")
    assert [(a["name"], a["type"]) for a in entry["axes"]] == [
        ("y", "space"), ("x", "space"), ("c", "channel")]
    assert dataset["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 1.0]


def test_axes_ngff_has_no_name_for(tmp_path):
    """Channels and RGB samples both: two channel axes, which NGFF cannot name."""
    tifffile.imwrite(tmp_path / "cyxs.ome.tif", np.zeros((2, 8, 6, 3), np.uint8),
                     photometric="rgb", metadata={"axes": "CYXS", "PhysicalSizeX": 0.5})
    assert tiff_source(tmp_path / "cyxs.ome.tif") is None


def test_an_unreadable_tiff_says_nothing(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"not a tiff")
    assert tiff_source(tmp_path / "a.tif") is None


@pytest.mark.parametrize(("names", "letters"), [
    ("yx", "YX"), ("czyx", "CZYX"), ("tczyx", "TCZYX"), ("zcyx", "ZCYX"),
    ("yxc", None), ("xy", None), ("qyx", None), ("yyx", None),
])
def test_ome_tiff_letters(names, letters):
    assert ome_tiff_letters({"axes": [{"name": n} for n in names]}) == letters


@pytest.mark.parametrize(("names", "shape", "letters"), [
    ("yxc", (8, 6, 3), "YXS"), ("yxc", (8, 6, 4), "YXS"), ("zyxc", (2, 8, 6, 3), "ZYXS"),
    ("yxc", (8, 6, 2), None), ("cyx", (3, 8, 6), "CYX"), ("cyxc", (3, 8, 6, 3), None),
])
def test_rgb_samples_are_written_as_samples(names, shape, letters):
    """Channels last are RGB(A) samples, as tiff_source reads them (before: None)."""
    entry = {"axes": [{"name": n} for n in names],
             "datasets": [{"path": "0", "coordinateTransformations": [
                 {"type": "scale", "scale": [1.0] * len(names)}]}]}
    assert ome_tiff_letters(entry, shape) == letters
    if letters:
        photometric = ome_tiff_metadata(entry, shape)["photometric"]
        assert photometric == ("rgb" if letters.endswith("S") else "minisblack")


def test_sizes_written_back_in_omes_symbols(tmp_path):
    entry = {"axes": [{"name": "t", "type": "time", "unit": "millisecond"},
                      {"name": "z", "type": "space", "unit": "nanometer"},
                      {"name": "y", "type": "space", "unit": "micrometer"},
                      {"name": "x", "type": "space", "unit": "parsec"}],  # OME has no such unit
             "datasets": [{"path": "0", "coordinateTransformations": [
                 {"type": "scale", "scale": [100.0, 300.0, 0.5, 0.25]},
                 {"type": "translation", "translation": [0, 0, 4.0, 8.0]}]}]}
    assert ome_tiff_metadata(entry)["metadata"] == {
        "axes": "TZYX", "TimeIncrement": 100.0, "TimeIncrementUnit": "ms",
        "PhysicalSizeZ": 300.0, "PhysicalSizeZUnit": "nm", "PhysicalSizeY": 0.5,
        "PhysicalSizeYUnit": "µm", "PhysicalSizeX": 0.25}
