"""``fftconv.kernels``: each equals what the library it stands in for applies."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv
from fftconv import kernels

ndi = pytest.importorskip("scipy.ndimage")
SCIPY_MODES = {"reflect": "reflect", "mirror": "mirror", "nearest": "nearest", "wrap": "wrap",
               "constant": "constant"}


@pytest.mark.parametrize("boundary", list(SCIPY_MODES))
@pytest.mark.parametrize("sigma, truncate", [(1.5, 4.0), ((0.7, 2.3), 4.0), ((2.0, 0), 3.0),
                                             (0.2, 4.0), ((1.0, 1.5, 0.5), 2.5)])
def test_gaussian_is_scipys_gaussian_filter(rng, boundary, sigma, truncate):
    x = rng.random((23, 30, 9)[:np.size(sigma) if np.ndim(sigma) else 2])
    g = kernels.gaussian(sigma, truncate=truncate)
    got = fftconv.convolve(x, g, boundary=boundary, cval=0.5)
    want = ndi.gaussian_filter(x, sigma, mode=SCIPY_MODES[boundary], cval=0.5,
                               truncate=truncate)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert g.dtype == np.float64 and abs(g.sum() - 1) < 1e-12


def test_gaussian_radius_as_scipys(rng):
    x = rng.random((30, 31))
    g = kernels.gaussian((1.0, 2.0), radius=(2, 5))
    assert g.shape == (5, 11)
    np.testing.assert_allclose(fftconv.convolve(x, g, boundary="reflect"),
                               ndi.gaussian_filter(x, (1.0, 2.0), radius=(2, 5)), atol=1e-12)


@pytest.mark.parametrize("boundary", list(SCIPY_MODES))
@pytest.mark.parametrize("size", [3, (5, 1), (7, 3)])
def test_box_is_scipys_uniform_filter_for_odd_sizes(rng, boundary, size):
    x = rng.random((20, 25))
    b = kernels.box(size)
    assert not any(b.strides) and not b.flags.writeable
    np.testing.assert_allclose(fftconv.convolve(x, b, boundary=boundary),
                               ndi.uniform_filter(x, size, mode=SCIPY_MODES[boundary]),
                               atol=1e-12)


@pytest.mark.parametrize("radius", [1, 2, 5, 12])
def test_disk_and_ball_are_scikit_images(radius):
    morphology = pytest.importorskip("skimage.morphology")
    for ours, theirs in ((kernels.disk(radius), morphology.disk(radius)),
                         (kernels.ball(radius), morphology.ball(radius))):
        np.testing.assert_allclose(ours, theirs / theirs.sum(), atol=1e-15)


def test_an_elliptical_disk_has_its_radii():
    d = kernels.disk((2, 4))
    assert d.shape == (5, 9) and d[2, 0] > 0 and d[0, 4] > 0 and d[0, 3] == 0


@pytest.mark.parametrize("gamma, alpha", [(3.0, 2.5), (1.0, 4.765), (5.0, 3.0)])
def test_moffat_is_astropys(gamma, alpha):
    convolution = pytest.importorskip("astropy.convolution")
    theirs = convolution.Moffat2DKernel(gamma, alpha)
    ours = kernels.moffat(gamma, alpha)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs.array, atol=1e-15)


@pytest.mark.parametrize("call", [lambda: kernels.gaussian(-1), lambda: kernels.disk(0),
                                  lambda: kernels.box(0), lambda: kernels.box(2.5),
                                  lambda: kernels.gaussian((1, 2), ndim=3),
                                  lambda: kernels.moffat(0), lambda: kernels.gaussian(np.nan)])
def test_bad_sizes_are_value_errors(call):
    with pytest.raises(ValueError):
        call()


def test_the_command_lines_named_kernels_are_these():
    from fftconv._io.kernel_spec import parse_kernel

    np.testing.assert_allclose(parse_kernel("gaussian:sigma=1.3,0.6").array(),
                               kernels.gaussian((1.3, 0.6)), rtol=1e-6)
    np.testing.assert_allclose(parse_kernel("disk:radius=3").array(), kernels.disk(3),
                               rtol=1e-6)
    assert parse_kernel("box:size=4,6").array().shape == kernels.box((4, 6)).shape
