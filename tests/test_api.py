"""convolve / correlate against the slow reference of SPEC §1.1, on every method."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import random
from reference import assert_matches, reference

import fftconv

METHODS = ["direct", "fft", "overlap-add", "auto"]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["constant", "reflect", "mirror", "nearest", "wrap"]

# (image shape, kernel shape): odd, even, non-square, 1-D, 3-D, kernel larger than image.
SHAPES = [
    ((17,), (5,)),
    ((16,), (4,)),
    ((13, 11), (3, 3)),
    ((12, 15), (4, 2)),
    ((9, 10), (5, 7)),
    ((6, 5, 7), (3, 2, 3)),
    ((5, 4), (7, 9)),
    ((3,), (8,)),
    ((4, 6, 3), (3, 1, 11)),  # more than twice the data: 'same' reads only the middle taps
    ((2,), (9,)),
]


def _fits(shapes, mode):
    image, kernel = shapes
    return mode != "valid" or all(k <= n for n, k in zip(image, kernel))


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", METHODS)
def test_float64_grid(rng, method, mode, boundary, shapes):
    if not _fits(shapes, mode):
        pytest.skip("valid needs kernel <= image")
    x = random(rng, shapes[0], "float64")
    k = random(rng, shapes[1], "float64")
    got = fftconv.convolve(x, k, mode, boundary=boundary, cval=0.25, method=method)
    assert_matches(got, reference(x, k, mode, boundary, cval=0.25), "float64")


@pytest.mark.parametrize("dtype", ["float32", "complex64", "complex128", "uint8", "int16",
                                   "int64", "float16", "bool"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", METHODS)
def test_dtypes(rng, method, mode, dtype):
    x = random(rng, (14, 13), dtype)
    k = random(rng, (4, 3), dtype if dtype != "bool" else "float32")
    expected_dtype = np.result_type(x.dtype, k.dtype, np.float32)
    got = fftconv.convolve(x, k, mode, boundary="reflect", method=method)
    assert_matches(got, reference(x, k, mode, "reflect"), expected_dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_correlate_is_convolve_with_conjugate_flip(rng, method, boundary):
    x = random(rng, (11, 9), "complex128")
    k = random(rng, (4, 3), "complex128")
    got = fftconv.correlate(x, k, "same", boundary=boundary, method=method)
    assert_matches(got, reference(x, k, "same", boundary, correlate=True), "complex128")


def test_spec_worked_example():
    x = np.arange(1, 10, dtype=float).reshape(3, 3)
    k = np.array([[1, 2], [3, 4]], dtype=float)
    np.testing.assert_array_equal(fftconv.correlate(x, k, "valid"), [[37, 47], [67, 77]])
    np.testing.assert_array_equal(fftconv.convolve(x, k, "valid"), [[23, 33], [53, 63]])


@pytest.mark.parametrize("method", METHODS)
def test_real_image_complex_kernel(rng, method):
    x = random(rng, (12, 10), "float32")
    k = random(rng, (3, 4), "complex64")
    got = fftconv.convolve(x, k, "full", method=method)
    assert_matches(got, reference(x, k, "full"), "complex64")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", [
    # (image shape, kernel shape, axes)
    ((10, 9, 3), (3, 4), (0, 1)),  # RGB image, one 2-D kernel for every channel
    ((3, 10, 9), (3, 4), (1, 2)),
    ((10, 3, 9), (4, 3), (2, 0)),  # kernel axes map to image axes in the order given
    ((10, 9, 3), (3, 4, 3), (0, 1)),  # per-channel kernels, same ndim
    ((10, 9, 1), (3, 4, 3), (0, 1)),  # image broadcasts against 3 kernels
    ((2, 10, 9), (1, 3, 4), (-2, -1)),
    ((8, 7), (3,), 1),
])
def test_axes(rng, method, case):
    image_shape, kernel_shape, axes = case
    x = random(rng, image_shape, "float64")
    k = random(rng, kernel_shape, "float64")
    for mode in MODES:
        got = fftconv.convolve(x, k, mode, axes=axes, method=method, boundary="mirror")
        assert_matches(got, reference(x, k, mode, "mirror", axes=axes), "float64")


def test_cnn_input_gradient_example(rng):
    vals = random(rng, (5, 5), "float64")
    w0 = random(rng, (3, 3, 3), "float64")
    got = fftconv.convolve(vals[None], w0, mode="full", axes=(1, 2))
    assert got.shape == (3, 7, 7)
    for c in range(3):
        assert_matches(got[c], reference(vals, w0[c], "full"), "float64")


@pytest.mark.parametrize("method", ["fft", "overlap-add"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ["constant", "wrap"])
def test_overlap_many_tiles(rng, method, mode, boundary):
    """A tiny memory limit forces many small tiles; the result must not change."""
    x = random(rng, (70, 45), "float32")
    k = random(rng, (9, 6), "float32")
    with fftconv.config.set(memory_limit=20_000):
        got = fftconv.convolve(x, k, mode, boundary=boundary, method=method)
    assert_matches(got, reference(x, k, mode, boundary), "float32")


@pytest.mark.parametrize("method", METHODS)
def test_long_1d_and_large_kernel(rng, method):
    x = random(rng, (3000,), "float32")
    k = random(rng, (257,), "float32")
    got = fftconv.convolve(x, k, "same", boundary="nearest", method=method)
    assert_matches(got, reference(x, k, "same", "nearest"), "float32")


@pytest.mark.parametrize("method", METHODS)
def test_inputs_untouched_readonly_and_strided(rng, method):
    base = random(rng, (20, 18), "float32")
    x = base[::-1, ::2]
    k = random(rng, (5, 4), "float32")[:, ::-1]
    before_x, before_k = x.copy(), k.copy()
    x.flags.writeable = False
    got = fftconv.convolve(x, k, "same", boundary="reflect", method=method)
    np.testing.assert_array_equal(x, before_x)
    np.testing.assert_array_equal(k, before_k)
    assert_matches(got, reference(before_x, before_k, "same", "reflect"), "float32")


@pytest.mark.parametrize("method", METHODS)
def test_deterministic(rng, method):
    x = random(rng, (40, 33), "float32")
    k = random(rng, (7, 7), "float32")
    first = fftconv.convolve(x, k, method=method)
    np.testing.assert_array_equal(first, fftconv.convolve(x, k, method=method))


def test_float32_stays_float32_end_to_end(rng, monkeypatch):
    """Every array in and out of every transform is single precision for float32 work."""
    seen = set()
    for name in fftconv.available_backends():
        backend = fftconv._registry.discovery.load_backend(name)
        for fn in ("rfftn", "irfftn", "fftn", "ifftn"):
            original = getattr(backend, fn)

            def spy(x, *args, _original=original, **kwargs):
                out = _original(x, *args, **kwargs)
                seen.update({x.dtype, out.dtype})
                return out

            monkeypatch.setattr(backend, fn, spy)
    x = random(rng, (64, 64), "float32")
    k = random(rng, (9, 9), "float32")
    for method in ["direct", "fft", "overlap-add"]:
        for backend in fftconv.available_backends():
            for policy in ["propagate", "interpolate"]:
                x[3, 4] = np.nan
                out = fftconv.convolve(x, k, method=method, backend=backend,
                                       boundary="reflect", nan_policy=policy)
                assert out.dtype == np.float32
    assert seen <= {np.dtype("float32"), np.dtype("complex64")}, seen


def test_dtype_override(rng):
    x = random(rng, (9, 9), "float32")
    k = random(rng, (3, 3), "float32")
    got = fftconv.convolve(x, k, dtype="float64")
    assert_matches(got, reference(x, k), "float64")
    assert fftconv.convolve(x, k, dtype=np.complex64).dtype == np.complex64


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kshape", [(3, 3), (4, 2), (5, 6), (1, 7)])
@pytest.mark.parametrize("boundary", ["constant", "reflect", "mirror", "nearest"])
def test_opencv_border_path(rng, monkeypatch, boundary, kshape, dtype):
    """'same' + small 2-D kernel goes to OpenCV's own borders, and still equals the reference."""
    pytest.importorskip("cv2")
    from fftconv._methods import direct

    taken = []
    original = direct.opencv_same_route
    monkeypatch.setattr(direct, "opencv_same_route",
                        lambda req: taken.append(1) or original(req))
    x = random(rng, (19, 23, 3), dtype)
    k = random(rng, kshape, dtype)
    got = fftconv.convolve(x, k, "same", boundary=boundary, axes=(0, 1), method="direct")
    assert taken and direct.opencv_same(
        fftconv._core.request.build_request(x, k, "same", boundary, 0.0, (0, 1), "direct",
                                       "propagate", None, flip=False)) is not None
    assert_matches(got, reference(x, k, "same", boundary, axes=(0, 1)), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, kshape, axes", [
    ((40, 36, 3), (1, 1, 5), (2,)), ((3, 30, 20), (9, 1, 1), (0,)), ((1, 25), (7, 1), (0,)),
    ((2, 3), (5, 9), (0, 1)), ((2, 30, 4), (3, 5), (0, 2)),
], ids=["rows", "planes", "one-row", "2-d", "2-d-batch"])
@pytest.mark.parametrize("boundary", ["constant", "reflect", "mirror", "nearest"])
def test_opencv_borders_take_kernels_longer_than_the_image(rng, boundary, shape, kshape, axes,
                                                           dtype):
    """OpenCV's borders repeat the rule as np.pad does, so a kernel longer than the image
    along an axis stays on them (before: a zero-padded copy and filter2D, 138 ms against
    63 ms for 2048²×3 ⊛ 5 taps along the channels)."""
    pytest.importorskip("cv2")
    from fftconv._methods import direct

    x = random(rng, shape, dtype)
    k = random(rng, kshape, dtype)
    if len(kshape) < len(shape):
        k = k.reshape([kshape[axes.index(ax)] if ax in axes else 1 for ax in range(len(shape))])
    request = fftconv._core.request.build_request(x, k, "same", boundary, 0.0, axes, "direct",
                                             "propagate", None, flip=False)
    got = direct.opencv_same(request)
    assert got is not None
    assert_matches(got, reference(x, k, "same", boundary, axes=axes), dtype)
    assert_matches(fftconv.convolve(x, k, boundary=boundary, axes=axes), got, dtype)


@pytest.mark.parametrize("shape, kshape, axes", [
    ((19, 23), (3, 4), None), ((9, 3, 11), (3, 4), (0, 2)), ((7, 30), (1, 5), None),
    ((3, 12), (5, 1), None),
], ids=["plane", "planes-not-last", "rows", "short-columns"])
def test_a_kept_opencv_route_takes_any_image_of_its_shape(rng, shape, kshape, axes):
    """The OpenCV 'same' route is prepared once per shape (kernel flipped and laid out
    then); later images of that shape in other layouts and values get their own result."""
    pytest.importorskip("cv2")
    k = random(rng, kshape, "float32")
    blur = fftconv.Convolver(k, boundary="reflect", axes=axes, method="direct")
    first = random(rng, shape, "float32")
    strided = random(rng, (2 * shape[0], *shape[1:]), "float32")[::2]
    fortran = np.asfortranarray(random(rng, shape, "float32"))
    for image in (first, strided, fortran, first + 1):
        assert_matches(blur(image), reference(image, k, "same", "reflect", axes=axes),
                       "float32")
    assert len(blur._routes) == 1


def test_request_replace_changes_only_what_it_names():
    request = fftconv._core.request.build_request(np.ones((4, 5)), np.ones((3,)), "full", "wrap",
                                             0.0, 1, "auto", "propagate", None, flip=False)
    changed = request.replace(mode="same", cval=2.0)
    assert (changed.mode, changed.cval, request.mode, request.cval) == ("same", 2.0, "full", 0.0)
    assert all(getattr(changed, f) is getattr(request, f)
               for f in ("image", "kernel", "axes", "windows", "boundary", "dtype"))
    with pytest.raises(TypeError, match="no field 'modes'"):
        request.replace(modes="same")
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.mode = "valid"


@pytest.fixture
def lines(monkeypatch):
    """The axis of each OpenCV line filter that ran (proves the path was taken)."""
    pytest.importorskip("cv2")
    from fftconv._methods import direct

    axes = []
    original = direct._filter_along
    monkeypatch.setattr(direct, "_filter_along",
                        lambda data, taps, axis, *a: axes.append(axis) or original(
                            data, taps, axis, *a))
    return axes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, axis", [((57,), 0), ((5, 40), 1), ((40, 5), 0),
                                         ((40, 20), 0), ((3, 30, 17), 1), ((3, 30, 4), 1)])
@pytest.mark.parametrize("mode", ["same", "full", "valid"])
@pytest.mark.parametrize("boundary", ["constant", "reflect", "mirror", "nearest", "wrap"])
@pytest.mark.parametrize("correlate", [False, True])
def test_opencv_line_filter(rng, lines, dtype, shape, axis, mode, boundary, correlate):
    """A 1-D kernel runs as OpenCV rows or a column of planes (before: a NumPy loop per
    tap, 5x slower on 10⁷ samples ⊛ 31 taps), for every mode and boundary, on views."""
    x = random(rng, shape, dtype)[..., ::-1]  # negative strides: no contiguous input
    k = random(rng, 9, dtype)
    operation = fftconv.correlate if correlate else fftconv.convolve
    got = operation(x, k, mode, boundary=boundary, axes=(axis,), method="direct")
    assert lines == [axis]
    assert_matches(got, reference(x, k, mode, boundary, axes=(axis,), correlate=correlate),
                   dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, axis", [((40, 1), 1), ((40, 3), 1), ((30, 5, 4), 1),
                                         ((20, 16), 1), ((20, 17), 1)])
@pytest.mark.parametrize("taps", [2, 5, 9])
@pytest.mark.parametrize("mode", ["same", "full", "valid"])
@pytest.mark.parametrize("boundary", ["constant", "reflect", "mirror", "nearest", "wrap"])
def test_short_rows_filter_as_one_matrix_product(rng, lines, dtype, shape, axis, taps, mode,
                                                 boundary):
    """Rows of at most 16 samples are filtered as ``rows @ M``, M being the filter of the
    unit rows (before: OpenCV per row, 138 ms for 2048²×3 ⊛ 5 taps along the channels,
    now 19 ms), for every mode and boundary, and equal the reference."""
    if mode == "valid" and taps > shape[axis]:
        return
    x = random(rng, shape, dtype)
    k = random(rng, taps, dtype)
    got = fftconv.convolve(x, k, mode, boundary=boundary, axes=(axis,), method="direct")
    assert lines == [axis]
    assert_matches(got, reference(x, k, mode, boundary, axes=(axis,)), dtype)


@pytest.mark.parametrize("mode", ["same", "full"])
def test_separable_volume_passes_are_line_filters(rng, lines, mode):
    """Each pass of a separable 3-D kernel (a z-stack's Gaussian) is an OpenCV line
    filter: before, a NumPy loop per tap, 4x slower at 64 x 256² ⊛ 17³."""
    x = random(rng, (12, 20, 18), "float32")
    g = [np.exp(-np.linspace(-2, 2, n) ** 2) for n in (5, 7, 4)]
    k = np.einsum("i,j,k->ijk", *g).astype(np.float32)
    got = fftconv.convolve(x, k, mode, boundary="reflect")
    assert sorted(lines) == [0, 1, 2]
    assert_matches(got, reference(x, k, mode, "reflect"), "float32")


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
@pytest.mark.parametrize("mode", ["same", "full", "valid"])
@pytest.mark.parametrize("boundary", ["constant", "reflect", "wrap"])
@pytest.mark.parametrize("limit", [None, "64KiB"])
def test_a_signals_tiles_run_in_batches(rng, monkeypatch, dtype, mode, boundary, limit):
    """A 1-D signal's overlap-add tiles are the rows of one transform call (before: a call
    a tile, 1.5-2x slower than scipy's oaconvolve at 10⁶ samples ⊛ 501 taps)."""
    from fftconv._methods import overlap

    batches = []
    original = overlap._run_lines
    monkeypatch.setattr(overlap, "_run_lines",
                        lambda problem, plan: batches.append(plan.block_shape) or original(
                            problem, plan))
    x = random(rng, 30000, dtype)
    k = random(rng, 301, dtype)
    with fftconv.config.set(memory_limit=limit):
        chosen = fftconv.plan(x, k, mode=mode, boundary=boundary, method="overlap-add")
        got = fftconv.convolve(x, k, mode, boundary=boundary, cval=0.5, method="overlap-add")
    assert batches and batches[0][0] < 30000 - 300
    if limit:  # the batches' buffers count too
        assert next(c for c in chosen.candidates if c.method == "overlap-add").bytes <= 2**16
    assert_matches(got, reference(x, k, mode, boundary, cval=0.5), dtype)


@pytest.mark.parametrize("method", ["direct", "fft", "overlap-add"])
def test_forced_method_is_the_one_that_runs(rng, monkeypatch, method):
    """The other executors raise: only the requested one may run."""
    from fftconv import _methods

    def refuse(name):
        def run(*args, **kwargs):
            raise AssertionError(f"{name} ran although method={method!r}")
        return run

    for name in _methods.RUNNERS:
        if name != method:
            monkeypatch.setitem(_methods.RUNNERS, name, refuse(name))
    monkeypatch.setattr(fftconv._methods.direct, "opencv_same_route", lambda request: None)
    x = random(rng, (40, 37), "float64")
    k = random(rng, (6, 5), "float64")
    got = fftconv.convolve(x, k, "same", boundary="reflect", method=method)
    assert_matches(got, reference(x, k, "same", "reflect"), "float64")


def test_auto_runs_what_the_plan_says(rng, monkeypatch):
    from fftconv import _methods

    x = random(rng, (300, 300), "float32")
    for kshape in [(3, 3), (41, 37)]:
        k = random(rng, kshape, "float32")
        chosen = fftconv.plan(x.shape, k.shape, dtype="float32").method
        ran = []
        for name, run in list(_methods.RUNNERS.items()):
            monkeypatch.setitem(_methods.RUNNERS, name,
                                lambda *a, _n=name, _r=run, _ran=ran: _ran.append(_n) or _r(*a))
        monkeypatch.setattr(fftconv._methods.direct, "opencv_same_route", lambda request: None)
        fftconv.convolve(x, k)
        assert ran == [chosen]
        monkeypatch.undo()


@pytest.mark.parametrize("nan_policy", ["propagate", "interpolate"])
def test_kernel_past_twice_the_data_is_cut_to_its_reach(rng, nan_policy):
    """Taps that meet no data in any wanted output are dropped before any method runs: 31
    taps along a 3-long channel axis once made the direct method pad the data 11× and the
    FFT 11× longer (2048²×3: 520 ms, now 140 ms)."""
    plan = fftconv.plan((256, 256, 3), (1, 1, 31))
    by_method = {c.method: c for c in plan.candidates}
    assert by_method["fft"].fft_shape[-1] <= 8 and "5 taps" in by_method["direct"].note
    x = random(rng, (20, 18, 3), "float64")
    x[4, 5, 1] = np.nan
    k = random(rng, (3, 1, 31), "float64")
    for method in METHODS:
        got = fftconv.convolve(x, k, method=method, cval=0.5, nan_policy=nan_policy)
        want = fftconv.convolve(x, k, method="direct", cval=0.5, nan_policy=nan_policy)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        if nan_policy == "propagate":
            ref = reference(np.nan_to_num(x), k, "same", "constant", cval=0.5)
            assert np.isnan(got).sum() == 3 * 3  # the NaN under each of the 3×3 middle taps
            assert_matches(np.where(np.isnan(got), 0, got), np.where(np.isnan(got), 0, ref),
                           "float64")
