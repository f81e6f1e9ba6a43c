"""The command line: round trips for every format, every error case, atomic outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import OME_CYX, ome_image, ome_tiff_pixels, random
from reference import assert_matches, reference

from fftconv import cli
from fftconv._io.file_axes import axis_names
from fftconv._io.kernel_spec import load_kernel

zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")


def read(path):
    path = str(path)
    if path.endswith(".zarr") or ".zarr/" in path:
        node = zarr.open(path, mode="r")
        return (node["0"] if isinstance(node, zarr.Group) else node)[:]  # OME-Zarr: level 0
    if path.endswith(".npy"):
        return np.load(path)
    return tifffile.imread(path)


@pytest.fixture
def files(tmp_path, rng):
    x = random(rng, (70, 53), "float32")
    np.save(tmp_path / "in.npy", x)
    stored = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=x.shape,
                             chunks=(32, 32), dtype=x.dtype)
    stored[:] = x
    tifffile.imwrite(tmp_path / "in.tif", x, tile=(32, 32))
    k = rng.uniform(0.1, 1, (7, 6)).astype(np.float32)
    np.save(tmp_path / "k.npy", k / k.sum())  # a PSF: no warning that it does not sum to 1
    return tmp_path, x


@pytest.mark.parametrize("source", ["in.npy", "in.zarr", "in.tif"])
@pytest.mark.parametrize("target", ["out.zarr", "out.npy", "out.tiff"])
def test_round_trips(files, source, target):
    folder, x = files
    argv = ["convolve", str(folder / source), str(folder / "k.npy"), str(folder / target),
            "--boundary", "mirror", "--chunks", "20"]
    assert cli.main(argv) == 0
    k = np.load(folder / "k.npy")
    assert_matches(read(folder / target), reference(x, k, "same", "mirror"), "float32")


def test_an_array_of_a_zarr_group_to_another_of_the_same_group(files):
    """``data.zarr/raw`` in, ``data.zarr/blurred`` out: the group gains the array."""
    folder, x = files
    zarr.open_group(str(folder / "data.zarr"), mode="w").create_array(
        "raw", shape=x.shape, chunks=(32, 32), dtype=x.dtype)[...] = x
    argv = ["convolve", str(folder / "data.zarr" / "raw"), str(folder / "k.npy"),
            str(folder / "data.zarr" / "blurred"), "--boundary", "nearest"]
    assert cli.main(argv) == 0
    assert sorted(zarr.open_group(str(folder / "data.zarr")).array_keys()) == ["blurred", "raw"]
    k = np.load(folder / "k.npy")
    assert_matches(read(folder / "data.zarr" / "blurred"), reference(x, k, "same", "nearest"),
                   "float32")


@pytest.mark.parametrize("halo_reads", ["reread", "hold"])
def test_halo_reads(files, monkeypatch, halo_reads):
    """``--halo-reads`` reaches the graph: a second read of the store's chunks, or none."""
    import fftconv._tiling.graph

    folder, x = files
    built = []
    real = fftconv._tiling.graph.block_pieces
    monkeypatch.setattr(fftconv._tiling.graph, "block_pieces",
                        lambda x, *a, **kw: built.append(real(x, *a, **kw)) or built[-1])
    argv = ["convolve", str(folder / "in.zarr"), str(folder / "k.npy"), str(folder / "o.npy"),
            "--halo-reads", halo_reads, "--boundary", "reflect"]
    assert cli.main(argv) == 0
    assert (len(built[0].dependencies) == 2) == (halo_reads == "reread")  # x and its reread
    assert_matches(read(folder / "o.npy"), reference(x, np.load(folder / "k.npy"), "same",
                                                     "reflect"), "float32")


@pytest.mark.parametrize("target", ["out.zarr", "out.tif"])
def test_an_rgb_image_with_axes(tmp_path, rng, target):
    """A 2-D kernel over an RGB image's rows and columns, each channel on its own."""
    x = random(rng, (40, 30, 3), "float32")
    np.save(tmp_path / "rgb.npy", x)
    k = random(rng, (5, 4), "float32")
    np.save(tmp_path / "k.npy", k)
    argv = ["convolve", str(tmp_path / "rgb.npy"), str(tmp_path / "k.npy"),
            str(tmp_path / target), "--axes", "0,1", "--chunks", "16", "--boundary", "nearest"]
    assert cli.main(argv) == 0
    assert_matches(read(tmp_path / target), reference(x, k, "same", "nearest", axes=(0, 1)),
                   "float32")


@pytest.mark.parametrize("source", ["cells.zarr", "cells.tif"])
def test_a_kernel_of_fewer_dimensions_runs_over_the_files_space_axes(tmp_path, rng, capsys,
                                                                     source):
    """A (channel, y, x) stack and a 2-D kernel: no --axes needed (before: exit status 2)."""
    x = random(rng, (2, 40, 30), "float32")
    if source == "cells.zarr":  # OME-Zarr
        group = zarr.open_group(str(tmp_path / source), mode="w")
        group.attrs["multiscales"] = [{"datasets": [{"path": "0"}], "axes": [
            {"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
            {"name": "x", "type": "space"}]}]
        group.create_array("0", shape=x.shape, chunks=(1, 16, 16), dtype=x.dtype)[...] = x
    else:
        tifffile.imwrite(tmp_path / source, x, photometric="minisblack",
                         metadata={"axes": "CYX"})
    k = random(rng, (5, 4), "float32")
    np.save(tmp_path / "k.npy", k)
    argv = ["convolve", str(tmp_path / source), str(tmp_path / "k.npy"),
            str(tmp_path / "out.zarr"), "--chunks", "16", "--boundary", "reflect"]
    assert cli.main(argv) == 0
    assert "axes 1,2 (y, x), the space axes of" in capsys.readouterr().out.lower()
    once = reference(x, k, "same", "reflect", axes=(1, 2))
    assert_matches(read(tmp_path / "out.zarr"), once, "float32")
    # The output keeps the names, so it runs the same way again (a TIFF as CYX).
    # (An OME-Zarr output is an OME-Zarr image of its own.)
    named = axis_names(tmp_path / "out.zarr", 3)
    assert [name.lower() for name, _ in named] == ["c", "y", "x"]
    assert isinstance(zarr.open(str(tmp_path / "out.zarr"), mode="r"),
                      zarr.Group if source == "cells.zarr" else zarr.Array)
    argv = ["convolve", str(tmp_path / "out.zarr"), str(tmp_path / "k.npy"),
            str(tmp_path / "twice.tif"), "--boundary", "reflect"]
    assert cli.main(argv) == 0
    with tifffile.TiffFile(tmp_path / "twice.tif") as tif:
        assert tif.series[0].axes == "CYX"
    assert_matches(read(tmp_path / "twice.tif"),
                   reference(once, k, "same", "reflect", axes=(1, 2)), "float32")


@pytest.mark.parametrize("dtype", ["float64", "complex64"])
def test_dtype(files, dtype):
    """float32 in, the dtype asked for out, at its accuracy (before: no --dtype)."""
    folder, x = files
    assert cli.main(["convolve", str(folder / "in.zarr"), str(folder / "k.npy"),
                     str(folder / "out.npy"), "--dtype", dtype, "--mode", "full"]) == 0
    out = np.load(folder / "out.npy")
    assert out.dtype == dtype
    assert_matches(out, reference(x, np.load(folder / "k.npy"), "full"), dtype)


def test_a_progress_bar_on_a_terminal(files, monkeypatch, capsys):
    folder, _ = files
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["convolve", str(folder / "in.zarr"), str(folder / "k.npy"),
                     str(folder / "out.zarr")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("\rfftconv: ") and err.endswith("chunks written (100%), " + err.split(
        "(100%), ")[-1]) and "ETA 0:00\n" in err


@pytest.mark.parametrize("mode", ["full", "valid"])
def test_modes_whose_blocks_are_ragged(files, mode):
    """Their blocks do not fall on the zarr output's chunk grid (written rechunked)."""
    folder, x = files
    argv = ["convolve", str(folder / "in.npy"), str(folder / "k.npy"), str(folder / "o.zarr"),
            "--mode", mode, "--chunks", "9", "--boundary", "wrap"]
    assert cli.main(argv) == 0
    k = np.load(folder / "k.npy")
    assert_matches(read(folder / "o.zarr"), reference(x, k, mode, "wrap"), "float32")


@pytest.mark.parametrize("command", ["convolve", "correlate"])
@pytest.mark.parametrize("nan_policy", ["propagate", "interpolate"])
def test_correlate_and_nan_policy(files, command, nan_policy):
    """``fftconv correlate`` and ``--nan-policy`` against the definitions, NaN kept local."""
    folder, x = files
    x = x.copy()
    holes = np.zeros(x.shape, bool)
    holes[[3, 40, 41], [50, 7, 8]] = True
    x[holes] = [np.nan, np.inf, np.nan]
    np.save(folder / "holes.npy", x)
    k = np.abs(np.load(folder / "k.npy")) + 0.1  # a PSF: positive, as interpolate wants
    np.save(folder / "psf.npy", k)
    argv = [command, str(folder / "holes.npy"), str(folder / "psf.npy"), str(folder / "o.zarr"),
            "--boundary", "reflect", "--chunks", "20", "--nan-policy", nan_policy]
    assert cli.main(argv) == 0
    got = read(folder / "o.zarr")

    def definition(image):
        return reference(image, k, "same", "reflect", correlate=command == "correlate")

    clean = np.where(holes, 0.0, x)
    if nan_policy == "propagate":  # NaN exactly where a hole falls under the kernel
        expected = np.where(definition(holes.astype(float)) > 0, np.nan, definition(clean))
    else:  # normalized convolution: conv(x·m, k) / conv(m, k) · sum(k)
        expected = definition(clean) / definition((~holes).astype(float)) * k.sum()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert np.isnan(got).any() == (nan_policy == "propagate")
    finite = np.isfinite(expected)
    assert_matches(got[finite], expected[finite], "float32")


@pytest.mark.parametrize("command", ["convolve", "correlate"])
def test_every_option_is_explained(command):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    actions = sub.choices[command]._actions
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]


@pytest.mark.parametrize("target", ["out.zarr", "out.npy", "out.tiff"])
def test_worker_processes_write_every_format(files, target):
    """Blocks computed in other processes land in the file (a pickled np.memmap target was a
    copy there: a .npy output came out all zeros; a TIFF output was computed whole in memory
    first)."""
    folder, x = files
    argv = ["convolve", str(folder / "in.zarr"), str(folder / "k.npy"), str(folder / target),
            "--boundary", "reflect", "--chunks", "25", "--scheduler", "processes"]
    assert cli.main(argv) == 0
    k = np.load(folder / "k.npy")
    assert_matches(read(folder / target), reference(x, k, "same", "reflect"), "float32")


@pytest.mark.parametrize("source", ["in.npy", "in.zarr", "in.tif", "contiguous.tif",
                                    "fortran.npy"])
def test_worker_processes_read_every_format(files, source):
    """A tiled TIFF's zarr store could not be pickled to worker processes ("cannot pickle
    '_thread.RLock'"); a .npy memory map was pickled whole into every task."""
    folder, x = files
    tifffile.imwrite(folder / "contiguous.tif", x)  # uncompressed, one strip: memory-mapped
    np.save(folder / "fortran.npy", np.asfortranarray(x))
    argv = ["convolve", str(folder / source), str(folder / "k.npy"), str(folder / "out.zarr"),
            "--boundary", "nearest", "--chunks", "25", "--scheduler", "processes"]
    assert cli.main(argv) == 0
    k = np.load(folder / "k.npy")
    assert_matches(read(folder / "out.zarr"), reference(x, k, "same", "nearest"), "float32")


@pytest.mark.parametrize("source, reader", [("big.npy", "MappedFile"),
                                            ("contiguous.tif", "MappedFile"),
                                            ("tiled.tif", "TiffTiles")])
def test_lazy_inputs_pickle_without_their_data(tmp_path, rng, source, reader):
    """A task sent to another process carries a file's path, not its pixels: a 64 MiB .npy
    took 37 s at 1.3 GiB on the processes scheduler (0.7 s on threads), and a contiguous
    TIFF was one zarr chunk, read whole for each block (6-7 s against 0.7 s)."""
    import pickle

    from fftconv._io import open_image

    x = random(rng, (512, 512), "float32")  # 1 MiB
    if source.endswith(".npy"):
        np.save(tmp_path / source, x)
    else:
        tifffile.imwrite(tmp_path / source, x, tile=(64, 64) if "tiled" in source else None)
    image = open_image(tmp_path / source, chunks=128)
    sources = [v for k, v in image.__dask_graph__().items() if str(k).startswith("original-")]
    assert [type(v).__name__ for v in sources] == [reader]
    assert len(pickle.dumps(image)) < 64 * 1024
    np.testing.assert_array_equal(image.compute(), x)


@pytest.mark.parametrize("spec, ndim, shape", [
    ("gaussian:sigma=1.5", None, (13, 13)), ("disk:radius=3", None, (7, 7)),
    ("box:size=4", None, (4, 4)), ("gaussian:sigma=1.5", 3, (13, 13, 13)),
    ("gaussian:sigma=1,2,2", None, (9, 17, 17)), ("disk:radius=2", 1, (5,)),
    ("disk:radius=1,3", 2, (3, 7)), ("box:size=3,5,1", 3, (3, 5, 1)),
])
def test_named_kernels(spec, ndim, shape):
    kernel = load_kernel(spec, ndim)
    assert kernel.shape == shape and kernel.dtype == np.float32
    assert abs(kernel.sum() - 1) < 1e-6


def test_named_kernels_are_what_they_say():
    gaussian = load_kernel("gaussian:sigma=1,2,2").astype(np.float64)
    profiles = [np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2) for r, s in ((4, 1), (8, 2))]
    expected = np.multiply.outer(profiles[0], np.multiply.outer(profiles[1], profiles[1]))
    np.testing.assert_allclose(gaussian, expected / expected.sum(), rtol=1e-6)
    ball = load_kernel("disk:radius=5", 3) > 0
    z, y, x = np.mgrid[-5:6, -5:6, -5:6]
    np.testing.assert_array_equal(ball, z**2 + y**2 + x**2 <= 25)  # (3, 4, 0) on the rim too
    ellipse = load_kernel("disk:radius=2,4") > 0
    y, x = np.mgrid[-2:3, -4:5]
    np.testing.assert_array_equal(ellipse, 4 * y**2 + x**2 <= 16)


def test_a_named_kernel_spans_the_volume(tmp_path, rng):
    """A (z, y, x) volume and a named kernel: before, a 2-D kernel and exit status 2."""
    x = random(rng, (12, 20, 16), "float32")
    tifffile.imwrite(tmp_path / "volume.tif", x, photometric="minisblack",
                     metadata={"axes": "ZYX"})
    argv = ["convolve", str(tmp_path / "volume.tif"), "gaussian:sigma=0.5,1,1",
            str(tmp_path / "out.npy"), "--boundary", "mirror", "--chunks", "8"]
    assert cli.main(argv) == 0
    k = load_kernel("gaussian:sigma=0.5,1,1")
    assert_matches(np.load(tmp_path / "out.npy"), reference(x, k, "same", "mirror"), "float32")
    # Chunks one per axis, which a zarr output keeps.
    assert cli.main(["convolve", str(tmp_path / "volume.tif"), "gaussian:sigma=0.5,1,1",
                     str(tmp_path / "out.zarr"), "--boundary", "mirror",
                     "--chunks", "5,20,7"]) == 0
    written = zarr.open(str(tmp_path / "out.zarr"), mode="r")
    assert written.chunks == (5, 20, 7)
    assert_matches(written[...], reference(x, k, "same", "mirror"), "float32")
    # With --axes the kernel follows them: each z plane blurred on its own.
    argv[3] = str(tmp_path / "planes.npy")
    argv[2] = "box:size=3"
    assert cli.main([*argv, "--axes", "1,2"]) == 0
    assert_matches(np.load(tmp_path / "planes.npy"),
                   reference(x, np.full((3, 3), 1 / 9, np.float32), "same", "mirror",
                             axes=(1, 2)), "float32")


def test_a_named_kernel_on_a_signal_is_1d(tmp_path, rng):
    """A 1-D ``.npy`` and ``gaussian:sigma=2``: before, a 2-D kernel and exit status 2."""
    x = random(rng, (300,), "float32")
    np.save(tmp_path / "signal.npy", x)
    assert cli.main(["convolve", str(tmp_path / "signal.npy"), "gaussian:sigma=2",
                     str(tmp_path / "out.npy"), "--boundary", "reflect", "--chunks", "64"]) == 0
    assert_matches(np.load(tmp_path / "out.npy"),
                   reference(x, load_kernel("gaussian:sigma=2", ndim=1), "same", "reflect"),
                   "float32")


def test_a_kernel_in_microns_follows_the_pixel_sizes(tmp_path, rng, capsys):
    """``gaussian:sigma=0.5um`` on a stack of 0.5 µm planes and 0.1 µm pixels is 1, 5
    and 5 pixels (before: "neither a .npy file nor one of ...")."""
    x = random(rng, (9, 24, 20), "float32")
    tifffile.imwrite(tmp_path / "stack.ome.tif", x, metadata={
        "axes": "ZYX", "PhysicalSizeZ": 0.5, "PhysicalSizeY": 0.1, "PhysicalSizeX": 100,
        "PhysicalSizeXUnit": "nm"})
    out = tmp_path / "out.npy"
    assert cli.main(["convolve", str(tmp_path / "stack.ome.tif"), "gaussian:sigma=0.5um",
                     str(out), "--boundary", "reflect", "--chunks", "4,10,10"]) == 0
    assert "gaussian:sigma=0.5um: sigma 1, 5, 5 pixels along z, y, x" in capsys.readouterr().out
    k = load_kernel("gaussian:sigma=1,5,5")
    assert_matches(np.load(out), reference(x, k, "same", "reflect"), "float32")


def test_a_kernel_in_microns_on_an_rgb_slide(tmp_path, rng, capsys):
    """An RGB OME-TIFF (a slide scan, YXS) states its pixel size: before, its samples
    axis made it "state no pixel size" and a kernel in µm exited 2."""
    x = (random(rng, (60, 80, 3), "float64") * 100 + 100).astype(np.uint8)
    tifffile.imwrite(tmp_path / "slide.ome.tif", x, photometric="rgb", tile=(32, 32),
                     metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    out = tmp_path / "out.zarr"
    assert cli.main(["convolve", str(tmp_path / "slide.ome.tif"), "gaussian:sigma=1um",
                     str(out), "--boundary", "reflect"]) == 0
    printed = capsys.readouterr().out
    assert "gaussian:sigma=1um: sigma 2, 2 pixels along y, x" in printed
    assert "written without its scale" in printed  # OME-Zarr has its channels first
    k = load_kernel("gaussian:sigma=2,2")
    assert_matches(read(out), reference(x, k, "same", "reflect", axes=(0, 1)), "float32")


def test_an_rgb_slide_pyramid_keeps_its_scale_and_levels(tmp_path, rng, capsys):
    """An RGB OME-TIFF pyramid (a slide scan) gives an RGB OME-TIFF pyramid of the same
    pixel sizes (before: a plain TIFF, "written without its scale")."""
    x = (random(rng, (64, 80, 3), "float64") * 100 + 100).astype(np.uint8)
    with tifffile.TiffWriter(tmp_path / "slide.ome.tif") as tif:
        tif.write(x, subifds=1, tile=(32, 32), photometric="rgb",
                  metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        tif.write(x[::2, ::2], subfiletype=1, tile=(16, 16), photometric="rgb")
    out = tmp_path / "out.ome.tif"
    assert cli.main(["convolve", str(tmp_path / "slide.ome.tif"), "gaussian:sigma=1um",
                     str(out), "--boundary", "reflect"]) == 0
    assert "(OME-TIFF, 2 levels)" in capsys.readouterr().out
    expected = reference(x, load_kernel("gaussian:sigma=2,2"), "same", "reflect", axes=(0, 1))
    letters, pixels = ome_tiff_pixels(out)
    assert letters == "YXS" and (pixels["PhysicalSizeX"], pixels["PhysicalSizeY"]) == (0.5, 0.5)
    with tifffile.TiffFile(out) as tif:
        levels = [level.asarray() for level in tif.series[0].levels]
    assert_matches(levels[0], expected, "float32")
    np.testing.assert_allclose(levels[1], levels[0].reshape(32, 2, 40, 2, 3).mean(axis=(1, 3)),
                               atol=1e-6 * abs(levels[0]).max())
    # A second run reads the output's pixel sizes back.
    assert cli.main(["convolve", str(out), "disk:radius=1um", str(tmp_path / "again.tif")]) == 0
    assert "disk:radius=1um: radius 2, 2 pixels along y, x" in capsys.readouterr().out


def test_a_kernel_in_microns_on_a_coarser_level(tmp_path, rng, capsys):
    """A level's pixel is its scale times the image's; a 2-D kernel takes the space axes."""
    whole = [{"type": "scale", "scale": [1.0, 2.0, 2.0]}]
    levels = {"0": [{"type": "scale", "scale": [1.0, 0.25, 0.25]}],
              "1": [{"type": "scale", "scale": [1.0, 0.5, 0.75]}]}
    source = ome_image(tmp_path / "cells.zarr", (2, 40, 30), levels=levels,
                       coordinateTransformations=whole)
    x = random(rng, (2, 20, 15), "float32")
    zarr.open_array(str(source / "1"), mode="r+")[...] = x
    out = tmp_path / "out.npy"
    assert cli.main(["convolve", str(source / "1"), "disk:radius=3um", str(out)]) == 0
    assert "radius 3, 2 pixels along y, x" in capsys.readouterr().out  # 1 µm and 1.5 µm
    k = load_kernel("disk:radius=3,2")
    assert_matches(np.load(out), reference(x, k, "same", axes=(1, 2)), "float32")


@pytest.mark.parametrize("kernel", ["psf.tif", "psf-deflate.tif", "psf.zarr", "g.zarr/psf",
                                    "psf.ome.zarr"])
def test_a_kernel_file_of_every_input_format(files, rng, kernel):
    """A measured PSF comes as a TIFF or an OME-Zarr, not a .npy (before: "could not be
    read: ... pickled data")."""
    folder, x = files
    k = random(rng, (7, 6), "float32")
    tifffile.imwrite(folder / "psf.tif", k)
    tifffile.imwrite(folder / "psf-deflate.tif", k, tile=(16, 16), compression="zlib")
    zarr.open_array(str(folder / "psf.zarr"), mode="w", shape=k.shape, dtype="f4")[:] = k
    zarr.open_group(str(folder / "g.zarr"), mode="w").create_array(
        "psf", shape=k.shape, dtype="f4")[:] = k
    ome_image(folder / "psf.ome.zarr", shape=(7, 6), axes=OME_CYX[1:],
              levels={"0": [{"type": "scale", "scale": [0.5, 0.5]}]})
    zarr.open_array(str(folder / "psf.ome.zarr" / "0"), mode="r+")[:] = k
    out = folder / "out.npy"
    assert cli.main(["convolve", str(folder / "in.npy"), str(folder / kernel), str(out)]) == 0
    assert_matches(np.load(out), reference(x, k, "same"), "float32")


@pytest.mark.parametrize("psf_nm, status", [(100, 0), (100.000001, 0), (65, 2)])
def test_a_kernel_file_sampled_as_the_image(tmp_path, rng, capsys, psf_nm, status):
    """A PSF measured at other pixels than the image's would blur it too much or too
    little, without a sign; the same pixel in another unit is the same (before: any
    kernel file was taken as sampled in the image's pixels)."""
    x = random(rng, (9, 24, 20), "float32")
    tifffile.imwrite(tmp_path / "stack.ome.tif", x, metadata={
        "axes": "ZYX", "PhysicalSizeZ": 0.5, "PhysicalSizeY": 0.1, "PhysicalSizeX": 0.1})
    k = random(rng, (5, 5), "float32")
    tifffile.imwrite(tmp_path / "psf.ome.tif", k, metadata={
        "axes": "YX", "PhysicalSizeY": psf_nm, "PhysicalSizeYUnit": "nm",
        "PhysicalSizeX": psf_nm, "PhysicalSizeXUnit": "nm"})
    out = tmp_path / "out.npy"
    assert cli.main(["convolve", str(tmp_path / "stack.ome.tif"), str(tmp_path / "psf.ome.tif"),
                     str(out), "--axes", "1,2"]) == status
    if status:
        assert not out.exists()
        assert "has pixels of 65 nanometer along y, the input 0.1 micrometer: resample" in (
            capsys.readouterr().err)
    else:
        assert_matches(np.load(out), reference(x, k, "same", axes=(1, 2)), "float32")


def _run(argv):
    return subprocess.run([sys.executable, "-m", "fftconv.cli", *argv], capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("case, argv, message", [
    ("missing input", ["nope.npy", "k.npy", "o.npy"], "does not exist"),
    ("bad format", ["in.npy", "k.npy", "o.bmp"], "unknown format"),
    ("bad kernel spec", ["in.npy", "blur:sigma=2", "o.npy"], "neither a file"),
    ("kernel of an unknown format", ["in.npy", "psf.xyz", "o.npy"], "kernel 'psf.xyz': "),
    ("a damaged FITS kernel", ["in.npy", "psf.fits", "o.npy"],
     "kernel 'psf.fits' could not be read"),
    ("unreadable kernel", ["in.npy", "junk.tif", "o.npy"], "kernel 'junk.tif' could not be"),
    ("kernel of other pixels", ["sized.ome.tif", "coarse.ome.tif", "o.npy"],
     "has pixels of 1 micrometer along y, the input 0.5 micrometer"),
    ("bad kernel value", ["in.npy", "gaussian:sigma=-1", "o.npy"], "positive"),
    ("kernel values for other axes", ["in.npy", "gaussian:sigma=1,2,3", "o.npy", "--axes",
                                      "0,1"], "3 values of sigma for 2 axes"),
    ("box of a fraction", ["in.npy", "box:size=2.5", "o.npy"], "integer sizes"),
    ("chunks for other axes", ["in.npy", "k.npy", "o.npy", "--chunks", "8,8,8"],
     "3 sizes for the image's 2 axes"),
    ("chunks not sizes", ["in.npy", "k.npy", "o.npy", "--chunks", "8,0"], "chunk side"),
    ("wrong parameter", ["in.npy", "disk:sigma=2", "o.npy"], "radius"),
    ("kernel in a unit, image in pixels", ["in.npy", "gaussian:sigma=1um", "o.npy"],
     "states no pixel size"),
    ("kernel in seconds along space", ["sized.ome.tif", "gaussian:sigma=2s", "o.npy"],
     "axis y, whose pixels are in micrometer"),
    ("kernel in no unit", ["in.npy", "gaussian:sigma=2furlong", "o.npy"], "not a unit"),
    ("existing output", ["in.npy", "k.npy", "in.zarr"], "--overwrite"),
    ("output is input", ["in.npy", "k.npy", "in.npy", "--overwrite"], "also an input"),
    ("output is the kernel", ["in.npy", "k.npy", "k.npy", "--overwrite"], "also an input"),
    ("output inside the input", ["in.zarr", "k.npy", "in.zarr/o.zarr"], "inside the input"),
    ("output holds the input", ["g.zarr/0", "k.npy", "g.zarr", "--overwrite"],
     "holds the input"),
    ("bad option", ["in.npy", "k.npy", "o.npy", "--mode", "half"], "invalid choice"),
    ("bad boundary for data", ["in.npy", "k.npy", "o.npy", "--method", "direct",
                               "--memory-limit", "lots"], "memory_limit"),
    ("unreadable input", ["junk.npy", "k.npy", "o.npy"], "could not be read"),
    ("kernel rank", ["in.npy", "k1.npy", "o.npy"], "dimensions"),
    ("kernel rank, three space axes", ["zyx.tif", "k.npy", "o.npy"], "3 of them space"),
    ("axes out of range", ["in.npy", "k.npy", "o.npy", "--axes", "0,5"], "out of range"),
    ("axes not a list", ["in.npy", "k.npy", "o.npy", "--axes", "rows"], "list of axes"),
    ("non-finite data", ["nan.npy", "k.npy", "o.npy", "--nan-policy", "raise"], "non-finite"),
    ("non-finite kernel", ["in.npy", "knan.npy", "o.npy"], "1 non-finite value"),
])
def test_errors_exit_2_with_one_line_and_write_nothing(files, case, argv, message):
    folder, _ = files
    (folder / "junk.npy").write_bytes(b"not a numpy file")
    np.save(folder / "k1.npy", np.ones(3))
    np.save(folder / "knan.npy", np.array([[1.0, np.inf], [1.0, 1.0]]))
    np.save(folder / "nan.npy", np.where(np.eye(70, 53) > 0, np.nan, 1.0))
    tifffile.imwrite(folder / "zyx.tif", np.ones((3, 8, 8), np.float32),
                     photometric="minisblack", metadata={"axes": "ZYX"})
    zarr.open_group(str(folder / "g.zarr"), mode="w").create_array("0", shape=(9, 9),
                                                                     dtype="f4")
    tifffile.imwrite(folder / "sized.ome.tif", np.ones((8, 8), np.float32),
                     metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    tifffile.imwrite(folder / "coarse.ome.tif", np.ones((3, 3), np.float32),
                     metadata={"axes": "YX", "PhysicalSizeX": 1, "PhysicalSizeY": 1})
    (folder / "psf.fits").write_bytes(b"SIMPLE  =")
    (folder / "psf.xyz").write_bytes(b"?")
    (folder / "junk.tif").write_bytes(b"not a tiff")
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    result = subprocess.run([sys.executable, "-m", "fftconv.cli", "convolve", *argv],
                            capture_output=True, text=True, cwd=folder, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before


@pytest.mark.parametrize("output", ["out.npy", "out.tif", "out.zarr"])
def test_failed_write_leaves_nothing_and_keeps_the_old_output(files, monkeypatch, output):
    """Every format is written by ``da.store``, block by block (TIFF was computed whole)."""
    folder, _ = files
    old = np.zeros((3, 2), dtype=np.float32)
    if output.endswith(".npy"):
        np.save(folder / output, old)
    elif output.endswith(".tif"):
        tifffile.imwrite(folder / output, old)
    else:
        zarr.open_array(str(folder / output), mode="w", shape=old.shape, dtype=old.dtype)[:] = old
    import dask.array as da

    def broken_store(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(da, "store", broken_store)
    argv = ["convolve", str(folder / "in.npy"), "box:size=3", str(folder / output),
            "--overwrite"]
    assert cli.main(argv) == 2
    np.testing.assert_array_equal(read(folder / output), old)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def _sigterm_escaped(signum, frame):
    raise RuntimeError("SIGTERM reached the handler fftconv should have replaced")


@pytest.mark.parametrize("output", ["out.npy", "out.zarr"])
def test_sigterm_mid_write_leaves_nothing_and_keeps_the_old_output(files, monkeypatch, capsys,
                                                                    output):
    """A batch system's SIGTERM unwinds like Ctrl-C: no hidden temporary copy is left.

    (By default SIGTERM ends the process on the spot; this test stands in a
    handler that fails instead, so the old behaviour fails here cleanly.)
    """
    folder, _ = files
    np.save(folder / "out.npy", np.zeros(3))
    zarr.create_array(str(folder / "out.zarr"), shape=(3,), dtype="float64")[:] = 0
    import dask.array as da

    def terminated_mid_write(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises in this thread first
        raise AssertionError("SIGTERM was not delivered")

    monkeypatch.setattr(da, "store", terminated_mid_write)
    previous = signal.signal(signal.SIGTERM, _sigterm_escaped)
    try:
        argv = ["convolve", str(folder / "in.npy"), "box:size=3", str(folder / output),
                "--overwrite"]
        assert cli.main(argv) == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is _sigterm_escaped  # restored
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err == "fftconv: terminated; nothing was written\n"
    np.testing.assert_array_equal(read(folder / output), np.zeros(3))
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_input_is_never_modified(files):
    folder, x = files
    assert cli.main(["convolve", str(folder / "in.zarr"), "gaussian:sigma=2",
                     str(folder / "o.zarr")]) == 0
    np.testing.assert_array_equal(read(folder / "in.zarr"), x)


def test_backends_and_plan_commands(capsys):
    assert cli.main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "scipy" in out and "available" in out and "in effect" in out
    assert cli.main(["plan", "--image", "4096x4096", "--kernel", "255x255"]) == 0
    assert "overlap-add" in capsys.readouterr().out


def test_distributed_local_cluster(files):
    distributed = pytest.importorskip("distributed")
    folder, x = files
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        for target in ("dist.zarr", "dist.npy", "dist.tif"):
            argv = ["convolve", str(folder / "in.zarr"), str(folder / "k.npy"),
                    str(folder / target), "--chunks", "25", "--boundary", "wrap",
                    "--scheduler", cluster.scheduler_address]
            assert cli.main(argv) == 0
    k = np.load(folder / "k.npy")
    for target in ("dist.zarr", "dist.npy", "dist.tif"):
        assert_matches(read(folder / target), reference(x, k, "same", "wrap"), "float32")


def _crash_once(block, marker):
    """Kill this worker process the first time any block passes here."""
    import os

    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return block
    os.close(fd)
    os._exit(1)


def test_killed_worker_is_retried_and_result_complete(tmp_path, rng):
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    import fftconv

    x = random(rng, (96, 80), "float64")
    k = random(rng, (9, 7), "float64")
    lazy = fftconv.convolve(da.from_array(x, chunks=24), k, boundary="reflect")
    guarded = lazy.map_blocks(_crash_once, str(tmp_path / "crashed"), dtype=lazy.dtype,
                              meta=lazy._meta)  # never call it here to infer meta
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        got = client.compute(guarded).result(timeout=120)
    assert (tmp_path / "crashed").exists()  # a worker really died mid-computation
    assert_matches(got, reference(x, k, "same", "reflect"), "float64")


def test_zarr_inputs_keep_their_own_chunks_when_large_enough(tmp_path):
    from fftconv._io import open_image

    big = zarr.open_array(str(tmp_path / "big.zarr"), mode="w", shape=(4096, 1024),
                          chunks=(1024, 1024), dtype="float32")  # 4 MiB chunks
    small = zarr.open_array(str(tmp_path / "small.zarr"), mode="w", shape=(4096, 1024),
                            chunks=(16, 16), dtype="float32")
    assert big.chunks and small.chunks
    assert open_image(tmp_path / "big.zarr").chunksize == (1024, 1024)
    assert open_image(tmp_path / "small.zarr").chunksize != (16, 16)  # dask's auto
    assert open_image(tmp_path / "big.zarr", chunks=512).chunksize == (512, 512)


def test_zarr_output_is_blosc_compressed(files):
    folder, _ = files
    assert cli.main(["convolve", str(folder / "in.zarr"), "box:size=3",
                     str(folder / "out.zarr")]) == 0
    out = zarr.open_array(str(folder / "out.zarr"), mode="r")
    assert "blosc" in str(out.compressors).lower()


def _place(path, index, level="0"):
    """The physical position of pixel ``index`` of an OME-Zarr image's ``level``."""
    attrs = zarr.open_group(str(path), mode="r").attrs
    scale = (attrs["ome"] if "ome" in attrs else attrs)["multiscales"][0]
    (dataset,) = [d for d in scale["datasets"] if d["path"] == level]
    found = {t["type"]: t[t["type"]] for t in dataset["coordinateTransformations"]}
    return tuple(i * s + o for i, s, o in zip(index, found["scale"],
                                              found.get("translation", [0] * len(index))))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("mode", ["same", "full", "valid"])
@pytest.mark.parametrize("command", ["convolve", "correlate"])
def test_an_ome_zarr_output_lies_where_its_input_does(tmp_path, capsys, version, mode, command):
    """A point source blurred by a symmetric kernel stays at its physical place, in every mode
    and through a second run (before: a plain array, the input's scale and origin lost)."""
    levels = {"0": [{"type": "scale", "scale": [1, 0.5, 0.25]},
                    {"type": "translation", "translation": [0, 10, 20]}]}
    source = ome_image(tmp_path / "cells.zarr", (2, 40, 30), version, levels=levels)
    point = (1, 17, 11)
    zarr.open_array(str(source / "0"), mode="r+")[point] = 1.0
    out = tmp_path / "out.zarr"
    assert cli.main([command, str(source), "gaussian:sigma=1", str(out), "--mode", mode]) == 0
    assert f"(OME-Zarr {version})" in capsys.readouterr().out
    peak = np.unravel_index(np.argmax(read(out)), read(out).shape)
    assert _place(out, peak) == _place(source, point)
    assert read(out).shape[1:] == {"same": (40, 30), "full": (48, 38), "valid": (32, 22)}[mode]
    again = tmp_path / "again.zarr"
    assert cli.main([command, str(out), "box:size=3", str(again), "--mode", mode]) == 0
    peak = np.unravel_index(np.argmax(read(again)), read(again).shape)
    assert _place(again, peak) == _place(source, point)


def test_an_ome_zarr_output_as_an_array_of_a_group(tmp_path, capsys):
    """``results.zarr/blurred`` of an OME-Zarr input is an OME-Zarr image in that group,
    named so (before: reported as an OME-TIFF, the output's kind told by its extension)."""
    source = ome_image(tmp_path / "cells.zarr", (2, 40, 30))
    zarr.open_array(str(source / "0"), mode="r+")[1, 17, 11] = 1.0
    zarr.open_group(str(tmp_path / "results.zarr"), mode="w")
    out = tmp_path / "results.zarr" / "blurred"
    assert cli.main(["convolve", str(source), "gaussian:sigma=1", str(out)]) == 0
    assert "(OME-Zarr 0.5)" in capsys.readouterr().out
    assert list(zarr.open_group(str(tmp_path / "results.zarr"), mode="r").group_keys()) == [
        "blurred"]
    peak = np.unravel_index(np.argmax(read(out)), read(out).shape)
    assert _place(out, peak) == _place(source, (1, 17, 11))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_an_ome_zarr_pyramid_gives_a_pyramid(tmp_path, capsys, version):
    """The levels that follow the one read in the input follow in the output, each the mean
    of the one before (before: one level, which a viewer zoomed out reads whole)."""
    levels = {str(i): [{"type": "scale", "scale": [1, 0.5 * 2**i, 0.25 * 2**i]}]
              for i in range(3)}
    source = ome_image(tmp_path / "cells.zarr", (2, 40, 32), version, levels=levels)
    zarr.open_array(str(source / "0"), mode="r+")[1, 16:20, 8:12] = 1.0
    out = tmp_path / "out.zarr"
    assert cli.main(["convolve", str(source), "box:size=3", str(out), "--mode", "full"]) == 0
    assert f"(OME-Zarr {version}, 3 levels)" in capsys.readouterr().out
    group = zarr.open_group(str(out), mode="r")
    finest = group["0"][:]
    assert finest.shape == (2, 42, 34)
    np.testing.assert_allclose(group["1"][:], finest.reshape(2, 21, 2, 17, 2).mean(axis=(2, 4)),
                               rtol=1e-6)
    assert group["2"].shape == (2, 10, 8)
    # The square's centre, physically: level 0's pixel (17.5, 9.5) in the input, at every level.
    for level in ("0", "1", "2"):
        image = group[level][1]
        centre = [float((image.sum(axis=1 - a) * np.arange(image.shape[a])).sum() / image.sum())
                  for a in (0, 1)]
        assert _place(out, (1, *centre), level) == pytest.approx((1, 17.5 * 0.5, 9.5 * 0.25))
    models = pytest.importorskip("ome_zarr_models")
    assert (models.v04 if version == "0.4" else models.v05).image.Image.from_zarr(group)


def test_an_ome_tiff_pyramid_gives_a_pyramid(tmp_path, rng, capsys):
    """An OME-TIFF's reduced images make the output's levels (before: one level)."""
    x = random(rng, (2, 40, 36), "float32")
    with tifffile.TiffWriter(tmp_path / "cells.ome.tif") as tif:
        tif.write(x, subifds=2, tile=(16, 16), photometric="minisblack",
                  metadata={"axes": "CYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5})
        for step in (2, 4):
            tif.write(x[:, ::step, ::step], subfiletype=1, tile=(16, 16),
                      photometric="minisblack")
    out = tmp_path / "out.zarr"
    assert cli.main(["convolve", str(tmp_path / "cells.ome.tif"), "gaussian:sigma=1um",
                     str(out), "--boundary", "nearest"]) == 0
    assert "(OME-Zarr 0.5, 3 levels)" in capsys.readouterr().out
    group = zarr.open_group(str(out), mode="r")
    finest = group["0"][:]
    assert_matches(finest, reference(x, load_kernel("gaussian:sigma=2,4"), "same", "nearest",
                                     axes=(1, 2)), "float32")
    np.testing.assert_allclose(group["2"][:], finest.reshape(2, 10, 4, 9, 4).mean(axis=(2, 4)),
                               atol=1e-6 * abs(finest).max())
    assert _place(out, (0, 0, 0), "2") == pytest.approx((0, 1.5 * 0.5, 1.5 * 0.25))
    models = pytest.importorskip("ome_zarr_models")
    assert models.v05.image.Image.from_zarr(group)
    # And an OME-TIFF output keeps them as reduced images (before: one level).
    assert cli.main(["convolve", str(tmp_path / "cells.ome.tif"), "gaussian:sigma=1um",
                     str(tmp_path / "out.tif"), "--boundary", "nearest"]) == 0
    assert "(OME-TIFF, 3 levels)" in capsys.readouterr().out
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        levels = [level.asarray() for level in tif.series[0].levels]
    assert [level.shape for level in levels] == [(2, 40, 36), (2, 20, 18), (2, 10, 9)]
    np.testing.assert_array_equal(levels[0], finest)
    np.testing.assert_allclose(levels[2], group["2"][:], atol=1e-6 * abs(finest).max())


def test_other_outputs_of_an_ome_zarr_input(tmp_path, capsys):
    """A .tif output is an OME-TIFF with the level's pixel sizes (before: none); .npy plain."""
    source = ome_image(tmp_path / "cells.zarr", (2, 40, 30))  # c, y, x at 0.5, 0.25 µm
    for name in ("out.tif", "out.npy"):
        assert cli.main(["convolve", str(source), "gaussian:sigma=1", str(tmp_path / name)]) == 0
        assert read(tmp_path / name).shape == (2, 40, 30)
    assert "out.tif (OME-TIFF)" in capsys.readouterr().out
    letters, pixels = ome_tiff_pixels(tmp_path / "out.tif")
    assert letters == "CYX"
    assert (pixels["PhysicalSizeY"], pixels["PhysicalSizeX"]) == (0.5, 0.25)
    assert pixels["PhysicalSizeYUnit"] == pixels["PhysicalSizeXUnit"] == "µm"
    plain = tmp_path / "plain.zarr"
    assert cli.main(["convolve", str(tmp_path / "out.npy"), "box:size=3", str(plain),
                     "--axes", "1,2"]) == 0
    assert isinstance(zarr.open(str(plain), mode="r"), zarr.Array)


@pytest.mark.parametrize("mode", ["same", "full", "valid"])
def test_a_tiffs_pixel_sizes_reach_an_ome_zarr_output(tmp_path, capsys, mode):
    """An OME-TIFF's pixel sizes become the output's scale, and a point source stays at
    its physical place (before: a plain zarr array, the sizes lost)."""
    x = np.zeros((2, 40, 30), np.float32)
    point = (1, 17, 11)
    x[point] = 1.0
    tifffile.imwrite(tmp_path / "cells.ome.tif", x, metadata={
        "axes": "CYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5, "PhysicalSizeYUnit": "nm"})
    out = tmp_path / "out.zarr"
    assert cli.main(["convolve", str(tmp_path / "cells.ome.tif"), "gaussian:sigma=1", str(out),
                     "--mode", mode]) == 0
    assert "(OME-Zarr 0.5)" in capsys.readouterr().out
    axes = zarr.open_group(str(out), mode="r").attrs["ome"]["multiscales"][0]["axes"]
    assert [a.get("unit") for a in axes] == [None, "nanometer", "micrometer"]
    peak = np.unravel_index(np.argmax(read(out)), read(out).shape)
    assert _place(out, peak) == (1, 17 * 0.5, 11 * 0.25)
    models = pytest.importorskip("ome_zarr_models")
    assert models.v05.image.Image.from_zarr(zarr.open_group(str(out), mode="r")) is not None


def test_imagej_axes_out_of_ngff_order(tmp_path, capsys):
    """ImageJ stacks are ZCYX, an order OME-Zarr forbids: a plain zarr output, said so;
    an OME-TIFF keeps the sizes."""
    tifffile.imwrite(tmp_path / "stack.tif", np.ones((3, 2, 20, 16), np.float32), imagej=True,
                     resolution=(4.0, 4.0), metadata={"axes": "ZCYX", "spacing": 2.0,
                                                       "unit": "um"})
    out = tmp_path / "out.zarr"
    assert cli.main(["convolve", str(tmp_path / "stack.tif"), "box:size=3", str(out)]) == 0
    assert "(z,c,y,x) are not in OME-Zarr's order" in capsys.readouterr().out
    assert isinstance(zarr.open(str(out), mode="r"), zarr.Array)
    assert cli.main(["convolve", str(tmp_path / "stack.tif"), "box:size=3",
                     str(tmp_path / "out.tif")]) == 0
    letters, pixels = ome_tiff_pixels(tmp_path / "out.tif")
    assert letters == "ZCYX"
    assert (pixels["PhysicalSizeZ"], pixels["PhysicalSizeY"], pixels["PhysicalSizeX"]) == (
        2.0, 0.25, 0.25)


def test_an_ome_zarr_scale_stored_by_path_gives_a_plain_output(tmp_path, capsys):
    """NGFF 0.4 lets a level's scale live in a file: not recomputed, and said so."""
    source = ome_image(tmp_path / "cells.zarr", (2, 40, 30), "0.4",
                       levels={"0": [{"type": "scale", "path": "scale.bin"}]})
    out = tmp_path / "out.zarr"
    assert cli.main(["convolve", str(source), "box:size=3", str(out)]) == 0
    assert "are not inline, one per axis; " in capsys.readouterr().out
    assert isinstance(zarr.open(str(out), mode="r"), zarr.Array)
