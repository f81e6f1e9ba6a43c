"""Image metadata in Python: open_image(metadata=True) and write_image of an Image or a
DataArray keep OME-Zarr / OME-TIFF axes, pixel sizes, units and origin."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv
from fftconv._io.ome import output_metadata, source_metadata, window_shift

pytest.importorskip("zarr")
ENTRY = {"version": "0.5",
         "axes": [{"name": "c", "type": "channel"},
                  {"name": "z", "type": "space", "unit": "micrometer"},
                  {"name": "y", "type": "space", "unit": "micrometer"},
                  {"name": "x", "type": "space", "unit": "micrometer"}],
         "datasets": [{"path": "0", "coordinateTransformations": [
             {"type": "scale", "scale": [1.0, 2.0, 0.5, 0.25]},
             {"type": "translation", "translation": [0.0, 10.0, -3.0, 4.0]}]}]}


@pytest.fixture
def stack(tmp_path, rng):
    data = rng.random((2, 5, 24, 30)).astype(np.float32)
    return fftconv.write_image(data, tmp_path / "stack.zarr", ome=ENTRY), data


def test_open_image_with_metadata(stack):
    path, data = stack
    image = fftconv.open_image(path, metadata=True)
    assert isinstance(image, fftconv.Image)
    assert image.axes == ("c", "z", "y", "x")
    assert image.scale == (1.0, 2.0, 0.5, 0.25)
    assert image.units == (None, "micrometer", "micrometer", "micrometer")
    assert image.origin == (0.0, 10.0, -3.0, 4.0)
    np.testing.assert_array_equal(image.data.compute(), data)


def test_a_same_result_written_from_the_image_keeps_its_ome_zarr_metadata(stack, tmp_path):
    path, _ = stack
    image = fftconv.open_image(path, metadata=True)
    blurred = fftconv.convolve(image.data, np.ones((3, 3)) / 9, axes=(2, 3), boundary="reflect")
    out = fftconv.write_image(image.with_data(blurred), tmp_path / "out.zarr")
    again = fftconv.open_image(out, metadata=True)
    assert (again.axes, again.scale, again.units, again.origin) == (
        image.axes, image.scale, image.units, image.origin)
    with pytest.raises(ValueError, match="mode='same'"):
        image.with_data(blurred[:, :, 1:])


@pytest.mark.parametrize("mode", ["same", "valid", "full"])
def test_the_xarray_round_trip_moves_the_origin_as_the_command_line_does(stack, tmp_path,
                                                                          mode):
    pytest.importorskip("xarray")
    path, _ = stack
    labelled = fftconv.open_image(path, metadata=True).to_xarray()
    assert labelled.dims == ("c", "z", "y", "x") and labelled.y.attrs["units"] == "micrometer"
    k = np.ones((3, 4)) / 12
    out = fftconv.convolve(labelled, k, mode, axes=("y", "x"))
    written = fftconv.write_image(out, tmp_path / "out.zarr")
    ours = fftconv.open_image(written, metadata=True)
    cli = output_metadata(source_metadata(path), window_shift((2, 5, 24, 30), k, (2, 3), mode))
    transforms = {t["type"]: t[t["type"]] for t in cli["datasets"][0]["coordinateTransformations"]}
    assert ours.scale == tuple(transforms["scale"])
    np.testing.assert_allclose(ours.origin, transforms.get("translation", [0.0] * 4))
    assert ours.axes == ("c", "z", "y", "x") and ours.units[1:] == ("micrometer",) * 3
    np.testing.assert_allclose(ours.data.compute(), out.values, rtol=1e-6)


def test_a_dataarray_to_an_ome_tiff_and_to_npy(tmp_path, rng):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("tifffile")
    plane = xr.DataArray(rng.random((20, 30)).astype(np.float32), dims=("y", "x"),
                         coords={"y": ("y", 0.5 * np.arange(20), {"units": "micrometer"}),
                                 "x": ("x", 0.5 * np.arange(30), {"units": "micrometer"})})
    tif = fftconv.open_image(fftconv.write_image(plane, tmp_path / "plane.tif"), metadata=True)
    assert tif.axes == ("y", "x") and tif.scale == (0.5, 0.5)
    npy = fftconv.write_image(plane, tmp_path / "plane.npy")  # no room for names: the data
    np.testing.assert_array_equal(np.load(npy), plane.values)
    bare = fftconv.open_image(npy, metadata=True)
    assert bare.axes == ("dim_0", "dim_1") and bare.scale == (1.0, 1.0) and bare.ome is None
