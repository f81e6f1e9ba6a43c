"""SPEC §3: window_sum, the vjps, match_template and estimate_kernel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv

MODES = ["full", "same", "valid"]
BOUNDARIES = ["constant", "reflect", "mirror", "nearest", "wrap"]


# -- window_sum --------------------------------------------------------------------------

@pytest.fixture(params=["opencv", "numpy"])
def sums_engine(request, monkeypatch):
    """Window sums through OpenCV's box filters, and through numpy's running sums."""
    if request.param == "opencv":
        pytest.importorskip("cv2")
    else:
        monkeypatch.setattr("fftconv._methods.box.opencv_installed", lambda: False)
    return request.param


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [1, 3, (4, 2), (7, 5)])
@pytest.mark.parametrize("shape", [(23, 19), (9, 300)])  # (9, 300): rows wide enough to slide
def test_window_sum_is_convolve_with_ones(rng, mode, boundary, size, shape, sums_engine):
    x = random(rng, shape, "float64")
    shape = (size, size) if isinstance(size, int) else size
    got = fftconv.window_sum(x, size, mode, boundary=boundary, cval=0.5)
    assert_matches(got, reference(x, np.ones(shape), mode, boundary, cval=0.5), "float64")


@pytest.mark.parametrize("axes", [(0, 1), (1, 2), (0, 2)])
def test_window_sum_batched_planes(rng, axes, sums_engine):
    x = random(rng, (6, 7, 260), "float32")
    shape = [1, 1, 1]
    for ax, k in zip(axes, (3, 4)):
        shape[ax] = k
    got = fftconv.window_sum(x, (3, 4), "valid", axes=axes)
    assert got.dtype == np.float32
    assert_matches(got, reference(x, np.ones(shape), "valid", "constant"), "float32")


def test_window_sum_counts_exactly(rng, sums_engine):
    mask = rng.random((300, 280)) < 0.5
    got = fftconv.window_sum(mask.astype(np.float64), (5, 9), "valid")
    expected = np.lib.stride_tricks.sliding_window_view(mask, (5, 9)).sum(axis=(-1, -2))
    assert np.array_equal(got, expected)


def test_window_sum_sliding_axis_stays_exact(rng, sums_engine):
    # 3000 sliding steps over sums of 3·1e6: the rounding must not drift
    x = 1e6 + rng.uniform(-1, 1, (3000, 256))
    got = fftconv.window_sum(x, (3, 1), mode="valid")
    expected = x[:-2] + x[1:-1] + x[2:]
    assert np.abs(got - expected).max() <= 1e-11 * np.abs(expected).max()


def test_window_sum_large_offset_float32(rng):
    x = (1e4 + rng.uniform(-1, 1, (300, 257))).astype(np.float32)
    got = fftconv.window_sum(x, (5, 7), boundary="reflect")
    assert got.dtype == np.float32
    expected = reference(x.astype(np.float64), np.ones((5, 7)), "same", "reflect")
    assert_matches(got, expected, "float32")
    local = expected - 1e4 * 35  # the varying part survives the offset
    err = np.abs(got.astype(np.float64) - expected).max()
    assert err <= 2e-3 * np.abs(local).max()


def test_window_sum_long_float64_axis_stays_exact(rng):
    x = 1e6 + rng.uniform(-1, 1, 200_000)
    got = fftconv.window_sum(x, 3, mode="valid")
    expected = x[:-2] + x[1:-1] + x[2:]
    assert np.abs(got - expected).max() <= 1e-11 * np.abs(expected).max()


def test_window_sum_nan_is_local_and_axes():
    x = np.ones((10, 8, 3))
    x[4, 4, 1] = np.nan
    got = fftconv.window_sum(x, 3, axes=(0, 1))
    assert np.isnan(got[3:6, 3:6, 1]).all() and np.isfinite(got[..., 0]).all()
    assert np.isnan(got).sum() == 9


def test_window_sum_local_variance_example(rng):
    a = rng.random((30, 30))
    n = 9
    mean = fftconv.window_sum(a, 3, mode="valid") / n
    var = fftconv.window_sum(a**2, 3, mode="valid") / n - mean**2
    windows = np.lib.stride_tricks.sliding_window_view(a, (3, 3))
    np.testing.assert_allclose(var, windows.var(axis=(-1, -2)), atol=1e-12)


# -- the vjps: the dot-product test ------------------------------------------------------

@pytest.mark.parametrize("fn", ["convolve", "correlate"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kshape", [(3, 3), (4, 2), (1, 5)])
def test_vjp_dot_product(rng, fn, mode, boundary, kshape):
    forward = getattr(fftconv, fn)
    vjp = getattr(fftconv, f"{fn}_vjp")
    x = random(rng, (11, 9), "float64")
    k = random(rng, kshape, "float64")
    out = forward(x, k, mode, boundary=boundary)
    c = random(rng, out.shape, "float64")
    gx, gk = vjp(x, k, c, mode, boundary=boundary)
    assert gx.shape == x.shape and gk.shape == k.shape
    v = random(rng, x.shape, "float64")
    lhs = np.vdot(forward(v, k, mode, boundary=boundary), c)
    np.testing.assert_allclose(lhs, np.vdot(v, gx), rtol=1e-11)
    w = random(rng, k.shape, "float64")
    lhs_k = np.vdot(forward(x, w, mode, boundary=boundary), c)
    np.testing.assert_allclose(lhs_k, np.vdot(w, gk), rtol=1e-11)


def test_vjp_batched_axes_and_cnn_layer(rng):
    vals = random(rng, (5, 5), "float64")
    w0 = random(rng, (3, 3, 3), "float64")
    x = vals[None]
    out = fftconv.correlate(x, w0, "valid", axes=(1, 2))
    c = random(rng, out.shape, "float64")
    gx, gw = fftconv.correlate_vjp(x, w0, c, "valid", axes=(1, 2))
    assert gx.shape == x.shape and gw.shape == w0.shape
    # against the explicit loops of a CNN layer's backward pass
    gw_loop = np.zeros_like(w0)
    gx_loop = np.zeros_like(vals)
    for ch, i, j in itertools.product(range(3), range(3), range(3)):
        gw_loop[ch] += c[ch, i, j] * vals[i:i + 3, j:j + 3]
        gx_loop[i:i + 3, j:j + 3] += c[ch, i, j] * w0[ch]
    np.testing.assert_allclose(gw, gw_loop, atol=1e-12)
    np.testing.assert_allclose(gx[0], gx_loop, atol=1e-12)


def test_vjp_lower_rank_kernel_per_slice(rng):
    x = random(rng, (8, 7, 3), "float64")
    k = random(rng, (3, 2), "float64")
    out = fftconv.convolve(x, k, axes=(1, 0))
    c = random(rng, out.shape, "float64")
    gx, gk = fftconv.convolve_vjp(x, k, c, axes=(1, 0))
    assert gk.shape == k.shape and gx.shape == x.shape
    v = random(rng, x.shape, "float64")
    np.testing.assert_allclose(np.vdot(fftconv.convolve(v, k, axes=(1, 0)), c), np.vdot(v, gx),
                               rtol=1e-11)
    w = random(rng, k.shape, "float64")
    np.testing.assert_allclose(np.vdot(fftconv.convolve(x, w, axes=(1, 0)), c), np.vdot(w, gk),
                               rtol=1e-11)


def test_vjp_bad_cotangent():
    with pytest.raises(ValueError, match="cotangent has shape"):
        fftconv.convolve_vjp(np.ones((5, 5)), np.ones((3, 3)), np.ones((4, 4)))


# -- match_template ---------------------------------------------------------------------

@pytest.mark.parametrize("shape, tshape", [((40, 37), (7, 5)), ((12, 14, 11), (4, 3, 5)),
                                           ((30, 300), (6, 9))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_match_template_equals_skimage(rng, shape, tshape, dtype, sums_engine):
    skimage = pytest.importorskip("skimage.feature")
    image = rng.random(shape).astype(dtype)
    template = rng.random(tshape).astype(dtype)
    got = fftconv.match_template(image, template)
    assert got.dtype == np.dtype(dtype)
    expected = skimage.match_template(image.astype(np.float64), template.astype(np.float64))
    np.testing.assert_allclose(got, expected, atol=2e-5 if dtype == "float32" else 1e-10)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # flat windows once warned from sqrt
def test_match_template_peak_and_flat_regions(rng, sums_engine):
    image = rng.random((60, 70)).astype(np.float32) + 100.0
    image[:20, :20] = 5.0  # flat: zero variance -> 0
    template = image[30:41, 40:49].copy()
    scores = fftconv.match_template(image, 0.5 * template - 7)
    assert np.unravel_index(scores.argmax(), scores.shape) == (30, 40)
    assert abs(scores[30, 40] - 1) < 1e-5
    assert np.all(scores[:5, :5] == 0)
    assert scores.min() >= -1 and scores.max() <= 1


def test_match_template_same_mode_is_centred(rng):
    image = rng.random((50, 50))
    template = image[20:27, 30:35]
    scores = fftconv.match_template(image, template, mode="same")
    assert scores.shape == image.shape
    assert np.unravel_index(scores.argmax(), scores.shape) == (20 + 3, 30 + 2)


def test_match_template_mask_ignores_pixels(rng):
    image = rng.random((40, 40))
    template = image[10:19, 12:21].copy()
    mask = np.ones(template.shape, dtype=bool)
    mask[:, :3] = False
    template[:, :3] = 99.0  # garbage under the mask
    scores = fftconv.match_template(image, template, mask=mask)
    assert np.unravel_index(scores.argmax(), scores.shape) == (10, 12)
    assert abs(scores[10, 12] - 1) < 1e-9


# -- estimate_kernel ---------------------------------------------------------------------

def _design_solve(x, y, kshape, mode, boundary, mask, lam):
    """Explicit least squares: one column per tap (what we never build for large cases)."""
    columns = []
    for tap in itertools.product(*(range(n) for n in kshape)):
        e = np.zeros(kshape)
        e[tap] = 1
        columns.append(fftconv.convolve(x, e, mode, boundary=boundary)[mask])
    a = np.stack(columns, axis=1)
    rhs = y[mask]
    if lam:
        a = np.vstack([a, np.sqrt(lam) * np.eye(a.shape[1])])
        rhs = np.concatenate([rhs, np.zeros(a.shape[1])])
    return np.linalg.lstsq(a, rhs, rcond=None)[0].reshape(kshape)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
def test_estimate_kernel_recovers_exactly(rng, mode, boundary):
    x = rng.random((24, 21))
    k = rng.random((4, 3))
    y = fftconv.convolve(x, k, mode, boundary=boundary)
    got, fit = fftconv.estimate_kernel(x, y, k.shape, mode, boundary=boundary,
                                       full_output=True)
    np.testing.assert_allclose(got, k, atol=1e-10)
    assert fit.converged and fit.relative_residual < 1e-10


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_estimate_kernel_masked_noisy_matches_explicit_solve(rng, lam):
    x = rng.random((20, 18))
    k = rng.random((3, 3))
    y = fftconv.convolve(x, k, boundary="nearest") + 0.05 * rng.standard_normal((20, 18))
    mask = np.ones(y.shape, dtype=bool)
    mask[:3] = False
    y[:3] = 0.0  # unknown rows: ignored
    got = fftconv.estimate_kernel(x, y, (3, 3), boundary="nearest", mask=mask,
                                  regularization=lam)
    expected = _design_solve(x, y, (3, 3), "same", "nearest", mask, lam)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def _tiled(x, lazy: bool):
    return pytest.importorskip("dask.array").from_array(x, chunks=8) if lazy else x


def _solved(results):
    """``(kernel, fit)``, computed when lazy (one solve for both)."""
    if hasattr(results[0], "dask"):
        return pytest.importorskip("dask").compute(*results)
    return results


class Recorder:
    """An estimate_kernel callback that keeps what it is told and stops after ``stop``."""

    def __init__(self, stop=None):
        self.calls, self.stop = [], stop

    def __call__(self, iteration, kernel, progress):
        self.calls.append((iteration, kernel, progress))
        if iteration == self.stop:
            raise StopIteration


@pytest.mark.parametrize("lazy", [False, True])
def test_estimate_kernel_reports_every_iteration(rng, lazy):
    """callback= (before: no word from an iteration that may run for hours out of core)."""
    x = rng.random((24, 21))
    k = rng.random((4, 3))
    y = fftconv.convolve(x, k, boundary="reflect")
    seen = Recorder()
    got, fit = _solved(fftconv.estimate_kernel(_tiled(x, lazy), y, k.shape, boundary="reflect",
                                               full_output=True, callback=seen))
    assert [i for i, _, _ in seen.calls] == list(range(1, fit.iterations + 1))
    assert fit.converged and seen.calls[-1][2] <= 1e-13 < seen.calls[0][2] <= 1
    np.testing.assert_allclose(seen.calls[-1][1], got, atol=1e-12)
    assert not any(kernel is got for _, kernel, _ in seen.calls)  # copies


@pytest.mark.parametrize("lazy", [False, True])
def test_estimate_kernel_stops_when_the_callback_says(rng, lazy):
    """StopIteration from the callback ends the iteration there, as maxiter would."""
    x = rng.random((24, 21))
    y = fftconv.convolve(x, rng.random((4, 3)))
    stopped, fit = _solved(fftconv.estimate_kernel(_tiled(x, lazy), y, (4, 3), full_output=True,
                                                   callback=Recorder(stop=3)))
    capped, capped_fit = _solved(fftconv.estimate_kernel(_tiled(x, lazy), y, (4, 3), maxiter=3,
                                                         full_output=True))
    assert fit.iterations == 3 and not fit.converged
    np.testing.assert_array_equal(stopped, capped)
    assert fit.relative_residual == capped_fit.relative_residual


def test_estimate_kernel_bad_arguments():
    with pytest.raises(ValueError, match="output has shape"):
        fftconv.estimate_kernel(np.ones((5, 5)), np.ones((4, 4)), (3, 3))
    with pytest.raises(ValueError, match="kernel_shape"):
        fftconv.estimate_kernel(np.ones((5, 5)), np.ones((5, 5)), (3,))
