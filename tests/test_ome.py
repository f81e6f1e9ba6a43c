"""fftconv._io.ome: an OME-Zarr input's axes and scale, carried to the convolved output."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OME_CYX as CYX
from conftest import ome_image
from conftest import ome_transforms as _scale

from fftconv._io.ome import output_metadata, pixel_sizes, source_metadata, window_shift

zarr = pytest.importorskip("zarr")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize(("mode", "moved"), [("same", (0, 10, 20)), ("full", (0, 8, 19)),
                                             ("valid", (0, 12, 21))])
def test_the_origin_moves_by_the_modes_window(tmp_path, version, mode, moved):
    """A 9×9 kernel: ``full`` starts 4 pixels before the input, ``valid`` 4 after."""
    source = source_metadata(ome_image(tmp_path / "cells.zarr", version=version))
    shift = window_shift((2, 40, 30), np.ones((9, 9)), (1, 2), mode)
    entry = output_metadata(source, shift)
    assert entry["version"] == version and entry["axes"] == CYX
    (dataset,) = entry["datasets"]
    assert dataset == {"path": "0", "coordinateTransformations": _scale(1, 0.5, 0.25,
                                                                         origin=moved)}


@pytest.mark.parametrize(("kernel", "axes", "mode", "shift"), [
    ((9, 9), (1, 2), "full", [0, -4, -4]),
    ((4, 5), (1, 2), "full", [0, -1, -2]),  # even: scipy's 'same' starts (K - 1) // 2 in
    ((4, 5), (1, 2), "valid", [0, 2, 2]),
    ((5, 4), (2, 1), "full", [0, -1, -2]),  # kernel axis i on image axis axes[i]
    ((1, 4, 5), None, "valid", [0, 2, 2]),
    ((4, 5), (1, 2), "same", [0, 0, 0]),
])
def test_window_shift(kernel, axes, mode, shift):
    assert window_shift((2, 40, 30), np.ones(kernel), axes, mode) == shift


def test_a_named_level_keeps_its_own_scale(tmp_path):
    levels = {"0": _scale(1, 0.5, 0.25), "1": _scale(1, 1.0, 0.5, origin=(0, 0.25, 0.125))}
    path = ome_image(tmp_path / "cells.zarr", shape=(2, 16, 12), levels=levels)
    entry = output_metadata(source_metadata(path / "1"), [0, -1, -1])
    assert entry["datasets"][0]["coordinateTransformations"] == _scale(
        1, 1.0, 0.5, origin=(0, -0.75, -0.375))


def test_the_images_own_transformations_and_name_are_kept(tmp_path):
    whole = [{"type": "scale", "scale": [0.1, 1.0, 1.0]}]
    path = ome_image(tmp_path / "cells.zarr", name="cells", coordinateTransformations=whole)
    entry = output_metadata(source_metadata(path), [0, 0, 0])
    assert entry["name"] == "cells" and entry["coordinateTransformations"] == whole


def test_ngff_03_names_get_types(tmp_path):
    """NGFF 0.3 lists names only, and no scale: 0.4 needs types and a scale."""
    path = ome_image(tmp_path / "cells.zarr", version="0.3", axes=["c", "y", "x"],
                     levels={"0": None})
    entry = output_metadata(source_metadata(path), [0, -2, 0])
    assert entry["version"] == "0.4"
    assert entry["axes"] == [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                             {"name": "x", "type": "space"}]
    assert entry["datasets"][0]["coordinateTransformations"] == _scale(
        1.0, 1.0, 1.0, origin=(0.0, -2.0, 0.0))


def test_pixel_sizes(tmp_path):
    """A level's pixel: its scale times the image's own, in the axis's unit."""
    whole = [{"type": "scale", "scale": [1.0, 2.0, 2.0]}]
    levels = {"0": _scale(1, 0.5, 0.25), "1": _scale(1, 1.0, 0.5)}
    path = ome_image(tmp_path / "cells.zarr", shape=(2, 16, 12), levels=levels,
                     coordinateTransformations=whole)
    assert pixel_sizes(source_metadata(path / "1"), 3) == [
        ("c", 1.0, None), ("y", 2.0, "micrometer"), ("x", 1.0, "micrometer")]
    old = ome_image(tmp_path / "old.zarr", version="0.3", axes=["c", "y", "x"],
                    levels={"0": None})
    assert pixel_sizes(source_metadata(old), 3) == [("c", 1.0, None), ("y", 1.0, None),
                                                    ("x", 1.0, None)]
    by_path = ome_image(tmp_path / "path.zarr", levels={"0": [{"type": "scale",
                                                                "path": "scale.bin"}]})
    assert pixel_sizes(source_metadata(by_path), 3) is None
    assert pixel_sizes(None, 3) is None


def test_transformations_by_path_are_not_recomputed(tmp_path):
    levels = {"0": [{"type": "scale", "path": "scale.bin"}]}
    path = ome_image(tmp_path / "cells.zarr", levels=levels)
    assert source_metadata(path) is not None
    assert output_metadata(source_metadata(path), [0, 0, 0]) is None


def test_inputs_without_ome_metadata(tmp_path):
    zarr.create_array(str(tmp_path / "plain.zarr"), shape=(4, 4), dtype="f4")
    zarr.open_group(str(tmp_path / "group.zarr"), mode="w").create_array("a", shape=(4,),
                                                                           dtype="f4")
    np.save(tmp_path / "a.npy", np.zeros(3))
    ome_image(tmp_path / "cells.zarr")
    for name in ("plain.zarr", "group.zarr", "group.zarr/a", "a.npy", "missing.zarr",
                 "cells.zarr/9"):
        assert source_metadata(tmp_path / name) is None, name


@pytest.mark.parametrize(("version", "written"), [("0.3", "0.4"), ("0.4", "0.4"),
                                                  ("0.5", "0.5"), ("0.6", "0.5")])
def test_the_output_version(version, written):
    """zarr v2's NGFF versions give 0.4; 0.5 and later (zarr v3) give 0.5."""
    level = {"path": "0", "coordinateTransformations": _scale(1.0, 1.0)}
    scale = {"axes": CYX[1:], "datasets": [level]}
    assert output_metadata((version, scale, level), [0, 0])["version"] == written


def test_the_inputs_coarser_levels_follow(tmp_path):
    """Each level after the one read that is a whole multiple of the last gives a level
    of the output, its pixels centred on those they average; a level of another ratio
    ends the pyramid there."""
    levels = {"0": _scale(1, 0.5, 0.25), "1": _scale(1, 1.0, 0.5),
              "2": _scale(1, 2.0, 1.0, origin=(0, 0.5, 0.25)), "3": _scale(1, 3.0, 1.5)}
    path = ome_image(tmp_path / "cells.zarr", shape=(2, 40, 32), levels=levels)
    entry = output_metadata(source_metadata(path), [0, -4, -4], shape=(2, 48, 40))
    assert [d["coordinateTransformations"] for d in entry["datasets"]] == [
        _scale(1, 0.5, 0.25, origin=(0, -2.0, -1.0)),
        _scale(1, 1.0, 0.5, origin=(0, -1.75, -0.875)),
        _scale(1, 2.0, 1.0, origin=(0, -1.25, -0.625))]  # 3.0 / 2.0 is no whole factor
    assert [d["path"] for d in entry["datasets"]] == ["0", "1", "2"]
    named = output_metadata(source_metadata(path / "1"), [0, 0, 0], shape=(2, 20, 16))
    assert len(named["datasets"]) == 2  # from level 1: level 2 follows
    small = output_metadata(source_metadata(path), [0, 0, 0], shape=(2, 3, 2))
    assert len(small["datasets"]) == 2  # level 2 would average 4×4 pixels of a 3×2 result
    assert len(output_metadata(source_metadata(path), [0, 0, 0])["datasets"]) == 1
