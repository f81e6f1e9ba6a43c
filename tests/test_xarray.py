"""xarray DataArrays through every public operation: dims, name, attrs and coords kept,
a dask-backed one lazy."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")


def _cells(rng, lazy=False):
    data = rng.random((3, 40, 50))
    image = xr.DataArray(
        data, dims=("c", "y", "x"), name="cells", attrs={"units": "counts"},
        coords={"c": ["r", "g", "b"], "y": np.arange(40) * 0.5, "x": 10 + np.arange(50) * 0.2,
                "time": 7.0, "row": ("y", np.arange(40) * 3)})
    return image.chunk({"c": 1, "y": 20}) if lazy else image


def _same_labels(out, image):
    assert out.dims == image.dims and out.name == image.name and out.attrs == image.attrs
    assert list(out.c.values) == list(image.c.values) and float(out.time) == 7.0


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("mode", ["same", "valid", "full"])
def test_convolve_keeps_labels_and_moves_coords_with_the_mode(rng, lazy, mode):
    image = _cells(rng, lazy)
    k = rng.random((5, 4))
    out = fftconv.convolve(image, k, mode, axes=("y", "x"))
    _same_labels(out, image)
    assert isinstance(out.data, da.Array) == lazy
    np.testing.assert_allclose(np.asarray(out), fftconv.convolve(image.values, k, mode,
                                                                 axes=(1, 2)), atol=1e-12)
    y, x = image.y.values, image.x.values
    if mode == "same":
        np.testing.assert_array_equal(out.y, y)
        np.testing.assert_array_equal(out.row, image.row)
    elif mode == "valid":  # the input coordinate under each output sample
        np.testing.assert_array_equal(out.y, y[2:2 + 36])
        np.testing.assert_array_equal(out.x, x[2:2 + 47])
        np.testing.assert_array_equal(out.row, image.row.values[2:2 + 36])
    else:  # evenly spaced: extended by (K - 1) // 2 before
        np.testing.assert_allclose(out.y, -1.0 + 0.5 * np.arange(44))
        np.testing.assert_allclose(out.x, 9.8 + 0.2 * np.arange(53))


def test_a_dask_backed_dataarray_is_not_computed_to_build_the_result(rng):
    image = _cells(rng, lazy=True)

    def explode(block):
        raise AssertionError("computed while building the graph")

    poisoned = image.copy(data=image.data.map_blocks(explode, dtype=image.dtype))
    lazy = fftconv.convolve(poisoned, np.ones((3, 3)), axes=("y", "x"))
    assert isinstance(lazy.data, da.Array) and lazy.shape == image.shape


def test_a_dataarray_kernel_names_the_axes(rng):
    image = _cells(rng)
    k = xr.DataArray(rng.random((4, 5)), dims=("x", "y"))  # any order: put in the image's
    out = fftconv.correlate(image, k, "valid")
    np.testing.assert_allclose(out.values, fftconv.correlate(image.values, k.values.T,
                                                             "valid", axes=(1, 2)))
    with pytest.raises(ValueError, match="not the image's"):
        fftconv.convolve(image, xr.DataArray(np.ones((2, 2)), dims=("y", "z")))
    with pytest.raises(ValueError, match="does not have"):
        fftconv.convolve(image, np.ones((3, 3)), axes=("y", "nope"))


def test_uneven_coordinates_are_dropped_with_a_warning_in_full(rng):
    image = _cells(rng).assign_coords(x=np.sort(rng.random(50)))
    with pytest.warns(UserWarning, match="'x' is dropped"):
        out = fftconv.convolve(image, np.ones((3, 3)), "full", axes=("y", "x"))
    assert "x" not in out.coords and "y" in out.coords


@pytest.mark.parametrize("lazy", [False, True])
def test_window_sum_match_template_and_the_convolver(rng, lazy):
    image = _cells(rng, lazy)
    sums = fftconv.window_sum(image, {"y": 3, "x": 5}, "valid")
    _same_labels(sums, image)
    np.testing.assert_allclose(np.asarray(sums), fftconv.window_sum(
        image.values, (3, 5), "valid", axes=(1, 2)), atol=1e-10)
    np.testing.assert_array_equal(sums.y, image.y.values[1:1 + 38])
    plane = image.isel(c=0)
    scores = fftconv.match_template(plane, plane.values[5:12, 8:20])
    assert scores.dims == ("y", "x") and scores.shape == (34, 39)
    np.testing.assert_array_equal(scores.x, plane.x.values[6:6 + 39])
    assert np.unravel_index(int(np.asarray(scores).argmax()), scores.shape) == (5, 8)
    conv = fftconv.Convolver(np.ones((3, 3)) / 9, boundary="reflect", axes=(1, 2))
    out = conv(image)
    _same_labels(out, image)
    np.testing.assert_allclose(np.asarray(out), conv(image.values), atol=1e-12)


def test_apply_ufunc_recipe_in_the_docs_works(rng):
    image = _cells(rng, lazy=True)
    out = xr.apply_ufunc(fftconv.convolve, image, kwargs={"kernel": np.ones((1, 3, 3)) / 9,
                                                          "boundary": "reflect"},
                         dask="allowed")
    assert isinstance(out.data, da.Array)
    np.testing.assert_allclose(out.values, fftconv.convolve(image.values, np.ones((1, 3, 3)) / 9,
                                                            boundary="reflect"))


# -- other dask collections, and array-likes read whole ----------------------------------------

class Wrapped:
    """A dask collection that wraps a dask array, as pint's or xarray's Variable do."""

    def __init__(self, array):
        self.data = array

    def __dask_graph__(self):
        return self.data.__dask_graph__()

    def __dask_keys__(self):
        return self.data.__dask_keys__()

    def __dask_postcompute__(self):
        return self.data.__dask_postcompute__()

    def __dask_postpersist__(self):
        return self.data.__dask_postpersist__()

    def __dask_tokenize__(self):
        return self.data.name


def test_any_dask_collection_wrapping_an_array_stays_lazy(rng):
    """Anything that was not a dask array went through np.asarray: computed whole."""
    x = rng.random((30, 30))
    wrapped = Wrapped(da.from_array(x, chunks=10))
    for out in (fftconv.convolve(wrapped, np.ones((3, 3))),
                fftconv.window_sum(wrapped, 3),
                fftconv.Convolver(np.ones((3, 3)))(wrapped)):
        assert isinstance(out, da.Array)
    np.testing.assert_allclose(fftconv.convolve(wrapped, np.ones((3, 3))).compute(),
                               fftconv.convolve(x, np.ones((3, 3))))
    assert isinstance(fftconv.convolve(xr.Variable(("y", "x"), da.from_array(x, chunks=10)),
                                       np.ones((3, 3))), da.Array)
    import dask

    with pytest.raises(TypeError, match="holds no dask array"):
        fftconv.convolve(dask.delayed(x), np.ones((3, 3)))


def test_an_array_like_larger_than_the_memory_limit_is_refused_with_the_lazy_line():
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=(4000, 4000), chunks=(1000, 1000),
                          dtype="float64")
    with fftconv.config.set(memory_limit="64MiB"):
        with pytest.raises(ValueError, match=r"zarr Array of 0.119 GiB.*from_zarr\(x\)"):
            fftconv.convolve(z, np.ones((3, 3)))
        assert fftconv.convolve(z[:10, :10], np.ones((3, 3))).shape == (10, 10)
        lazy = fftconv.convolve(da.from_zarr(z), np.ones((3, 3)))
        assert isinstance(lazy, da.Array)
