import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

# Tests measure nothing: keep FFTW planning cheap and never touch the user's files.
os.environ.setdefault("FFTCONV_PLANNER_EFFORT", "estimate")


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory, monkeypatch):
    """No user config file or wisdom leaks into tests."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for key in list(os.environ):
        if key.startswith("FFTCONV_") and key != "FFTCONV_PLANNER_EFFORT":
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _no_kept_routes():
    """Each test plans its own calls: a route kept by an earlier test would skip what a
    later one patches (a planner rate, a method) for the same shapes and kernel."""
    from fftconv._planning.routes import CALLS

    CALLS.clear()


@pytest.fixture(autouse=True)
def _blocks_follow_chunks(monkeypatch):
    """Dask blocks merge small chunks to ~1 Mi pixels, and chunks shorter than twice the
    halo: the tests' small images would be one block each, and the tiling would go
    untested.  Tests of the merge set their own."""
    try:
        from fftconv._tiling import chunks as _chunks
    except ImportError:  # no dask installed: nothing tiles
        return
    monkeypatch.setattr(_chunks, "BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(_chunks, "MOST_BLOCK_ELEMENTS", 1)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.uniform(-1, 1, shape) + 1j * rng.uniform(-1, 1, shape)).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 50, shape).astype(dtype)
    return rng.uniform(-1, 1, shape).astype(dtype)


OME_CYX = [{"name": "c", "type": "channel"},
           {"name": "y", "type": "space", "unit": "micrometer"},
           {"name": "x", "type": "space", "unit": "micrometer"}]


def ome_transforms(*factors, origin=None):
    """An OME-Zarr level's ``coordinateTransformations``: a scale, then any translation."""
    transforms = [{"type": "scale", "scale": list(factors)}]
    if origin is not None:
        transforms.append({"type": "translation", "translation": list(origin)})
    return transforms


def ome_tiff_pixels(path) -> tuple[str, dict]:
    """An OME-TIFF's axes letters (tifffile's) and its first image's OME-XML ``Pixels``."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome, path
        return tif.series[0].axes, tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]


def ome_image(path, shape=(2, 8, 6), version="0.5", axes=OME_CYX, levels=None,
              zarr_format=None, **extra):
    """An OME-Zarr image group of zeros: ``levels`` maps each path to its transformations.

    On zarr v3 from NGFF 0.5, else v2, unless ``zarr_format`` says otherwise.
    """
    import zarr

    levels = levels or {"0": ome_transforms(1, 0.5, 0.25, origin=(0, 10, 20))}
    datasets = [{"path": p, **({"coordinateTransformations": t} if t else {})}
                for p, t in levels.items()]
    scale = {"axes": axes, "datasets": datasets, **extra}
    zarr_format = zarr_format or (3 if version == "0.5" else 2)
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    group.attrs.update({"ome": {"version": version, "multiscales": [scale]}}
                       if version == "0.5" else {"multiscales": [{"version": version, **scale}]})
    for i, level in enumerate(levels):
        group.create_array(level, shape=shape[:1] + tuple(n >> i for n in shape[1:]),
                           dtype="f4")
    return path


def child_finishes(pid: int, seconds: float) -> None:
    """Wait for the forked child ``pid`` to exit 0; kill it and fail if it waits for ever."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert status == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the child waited for ever")
