"""Structured kernels (separable, low rank, box) run exactly, and only when they should."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import child_finishes, random
from reference import assert_matches, reference

import fftconv
from fftconv._core.request import build_request
from fftconv._core.structure import analyze
from fftconv._methods import structured
from fftconv._planning import engine as _engine
from fftconv._planning import structured as pricing

MODES = ["full", "same", "valid"]
BOUNDARIES = ["constant", "reflect", "mirror", "nearest", "wrap"]


def gaussian(n, sigma, dtype="float64"):
    t = np.arange(n) - (n - 1) / 2
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return np.outer(g, g[: n - 1] if n > 3 else g).astype(dtype)


@pytest.fixture
def ran(monkeypatch):
    """Which structured kind ran (proves the path was taken)."""
    kinds = []
    original = structured.run

    def spy(structure, request, compute_general):
        kinds.append(structure.kind)
        return original(structure, request, compute_general)

    monkeypatch.setattr(structured, "run", spy)
    return kinds


def cheaper(monkeypatch, **rates):
    """Make the cost model's ``rates`` (``extra_pass``: a pass, ``box``: running sums) what the
    test needs, so a small image takes the route under test.  The rates are part of
    what a choice is kept by, so no other test sees a choice made here."""
    original = pricing.rates
    monkeypatch.setattr(pricing, "rates",
                        lambda *a, **kw: dataclasses.replace(original(*a, **kw), **rates))


@pytest.fixture
def free_passes(monkeypatch):
    """A structured kernel's passes cost only their arithmetic."""
    cheaper(monkeypatch, extra_pass=1e-12)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_separable(rng, ran, free_passes, mode, boundary, dtype):
    x = random(rng, (60, 57), dtype)
    k = gaussian(9, 2.0, dtype)  # 9x8: odd and even axes
    got = fftconv.convolve(x, k, mode, boundary=boundary, cval=0.7)
    assert ran == ["separable"]
    assert_matches(got, reference(x, k, mode, boundary, cval=0.7), dtype)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_low_rank(rng, ran, free_passes, boundary):
    x = random(rng, (70, 64), "float64")
    u, v = rng.standard_normal((2, 15)), rng.standard_normal((2, 13))
    k = np.outer(u[0], v[0]) + np.outer(u[1], v[1])
    got = fftconv.convolve(x, k, "same", boundary=boundary, cval=-0.3)
    assert ran == ["low-rank"]
    assert_matches(got, reference(x, k, "same", boundary, cval=-0.3), "float64")


@pytest.mark.parametrize("dtype", ["longdouble", "clongdouble"])
def test_long_double_skips_the_svd(rng, dtype):
    """LAPACK has no long double (before: method="auto" raised "array type float128 is
    unsupported in linalg" for any 2-D kernel the SVD would test)."""
    x = random(rng, (40, 37), dtype)
    k = random(rng, (9, 8), dtype)
    assert analyze(k, (0, 1)).kind == "general"
    got = fftconv.convolve(x, k, "same", boundary="reflect")
    assert_matches(got, reference(x, k, "same", "reflect"), dtype)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
def test_box(rng, ran, mode, boundary, monkeypatch):
    cheaper(monkeypatch, box=1e-15)  # make the running sums win
    x = random(rng, (40, 37), "float32")
    k = np.full((6, 5), 0.25, np.float32)
    got = fftconv.convolve(x, k, mode, boundary=boundary, cval=2.0)
    assert ran == ["box"]
    assert_matches(got, reference(x, k, mode, boundary, cval=2.0), "float32")


def test_separable_3d_and_correlate(rng, ran, free_passes):
    x = random(rng, (20, 18, 16), "float64")
    f = [rng.uniform(0.1, 1, n) for n in (5, 4, 6)]
    k = np.multiply.outer(np.multiply.outer(f[0], f[1]), f[2])
    got = fftconv.correlate(x, k, "same", boundary="reflect")
    assert ran == ["separable"]
    assert_matches(got, reference(x, k, "same", "reflect", correlate=True), "float64")


def test_nan_stays_local_on_the_separable_path(rng, ran, free_passes):
    x = random(rng, (50, 50), "float32")
    x[10, 20] = np.nan
    k = gaussian(15, 3.0, "float32")  # 15x14: past OpenCV's 2-D direct area
    got = fftconv.convolve(x, k)
    assert "separable" in ran
    poison = reference(np.isnan(x).astype(float), np.ones(k.shape)) > 0.5
    assert np.array_equal(np.isnan(got), poison) and poison.sum() == k.size


def test_near_separable_is_not_mistaken(rng):
    k = np.outer(np.hanning(9), np.hanning(9)) + 1e-4 * random(rng, (9, 9), "float64")
    assert analyze(k, (0, 1)).kind == "general"
    assert analyze(np.outer(np.hanning(9), np.hanning(9)), (0, 1)).kind == "separable"


def test_rank_tolerance_follows_dtype(rng):
    base = np.outer(np.hanning(12)[1:-1], np.hanning(11)[1:-1])
    noisy = base + 1e-9 * random(rng, base.shape, "float64")
    assert analyze(noisy.astype(np.float32), (0, 1)).kind == "separable"
    assert analyze(noisy, (0, 1)).kind == "general"


def test_batched_kernels_are_not_structured(rng, ran):
    x = random(rng, (30, 30, 3), "float64")
    k = np.stack([gaussian(5, 1.0)] * 3, axis=-1)
    got = fftconv.convolve(x, k, axes=(0, 1))
    assert ran == []
    assert_matches(got, reference(x, k, axes=(0, 1)), "float64")


# -- Convolver and the spectrum cache ------------------------------------------------------

@pytest.mark.parametrize("method", ["fft", "overlap-add", "auto"])
def test_convolver_equals_convolve_and_transforms_kernel_once(rng, method, monkeypatch):
    k = random(rng, (9, 7), "float32")
    conv = fftconv.Convolver(k, boundary="wrap", method=method, backend="scipy")
    backend = fftconv._registry.discovery.load_backend("scipy")
    kernel_transforms = []
    original = backend.rfftn

    def spy(x, s, axes, workers=1):
        if x.shape == k.shape:
            kernel_transforms.append(s)
        return original(x, s, axes, workers)

    monkeypatch.setattr(backend, "rfftn", spy)
    frames = random(rng, (4, 80, 70), "float32")
    for frame in frames:
        assert_matches(conv(frame), reference(frame, k, "same", "wrap"), "float32")
    assert len(kernel_transforms) <= 1


def test_convolver_validates_early_and_copies_the_kernel(rng):
    with pytest.raises(ValueError, match="boundary="):
        fftconv.Convolver(np.ones((3, 3)), boundary="bounce")
    with pytest.raises(ValueError, match="mode="):
        fftconv.Convolver(np.ones(3), mode="half", axes=0)
    k = np.ones((3, 3))
    conv = fftconv.Convolver(k, correlate=True)
    k[:] = 5
    x = random(rng, (10, 10), "float64")
    assert_matches(conv(x), reference(x, np.ones((3, 3)), correlate=True), "float64")
    assert "correlate" in repr(conv) and conv.plan((4096, 4096)).method


@pytest.fixture
def plans(monkeypatch):
    """How many times the planner was asked (every route starts from one)."""
    calls = []
    original = _engine.plan_request

    def spy(request, settings, spectra=None, kernel_ready=None):
        calls.append(request.image.shape)
        return original(request, settings, spectra, kernel_ready)

    monkeypatch.setattr(_engine, "plan_request", spy)
    return calls


@pytest.mark.parametrize("kernel", ["general", "separable", "box"])
def test_convolver_plans_each_shape_once(rng, plans, ran, kernel, monkeypatch):
    """Calls on images of a seen shape and dtype run the kept route (it planned every call),
    a structured kernel's passes included."""
    k = {"general": random(rng, (3, 3), "float32"), "separable": gaussian(11, 2.0, "float32"),
         "box": np.ones((5, 5), np.float32)}[kernel]
    cheaper(monkeypatch, extra_pass=1e-12, box=1e-15)  # the structured routes, on small images
    conv = fftconv.Convolver(k, boundary="reflect")
    frames = random(rng, (3, 64, 48), "float32")
    conv(frames[0])
    first = len(plans)
    for frame in frames:
        assert_matches(conv(frame), reference(frame, k, "same", "reflect"), "float32")
    assert len(plans) == first
    wide = random(rng, (40, 90), "float64")
    assert_matches(conv(wide), reference(wide, k, "same", "reflect"), "float64")
    assert len(plans) > first  # a new shape and dtype is planned for
    assert set(ran) == (set() if kernel == "general" else {kernel})


def test_structured_pricing_is_kept_per_kernel_and_shape(rng, plans):
    """A separable kernel's route is priced once, not on every call: pricing planned each
    pass and the plain method (four plans, 0.4 ms, a 32² image's convolution twice over).
    The route itself is kept too (before: the plain method's plan was made every call),
    for another array of the same values as well."""
    k = gaussian(3, 0.7, "float32")
    x = random(rng, (32, 32), "float32")
    fftconv.convolve(x, k)
    for kernel in (k, k.copy()):
        before = len(plans)
        assert_matches(fftconv.convolve(x, kernel), reference(x, k), "float32")
        assert len(plans) == before  # nothing planned, nothing priced
    before = len(plans)
    fftconv.convolve(random(rng, (32, 40), "float32"), k)
    with fftconv.config.set(memory_limit="1GiB"):
        fftconv.convolve(x, k)
    assert len(plans) - before > 2  # a new shape, new settings: priced again


@pytest.mark.parametrize("kind", ["separable", "general", "box"])
def test_kept_call_routes_follow_the_kernel_values_and_settings(rng, plans, kind):
    """A kept route is found by the kernel's values, not the array: one changed in place
    is planned again and gives its own result; so are other settings, another dtype and
    another shape.  NaN still stays local."""
    shape = (40, 36)
    k = {"separable": gaussian(7, 1.5), "general": random(rng, (7, 6), "float64"),
         "box": np.ones((7, 7))}[kind]
    x = random(rng, shape, "float64")
    for _ in range(2):
        assert_matches(fftconv.convolve(x, k, boundary="reflect"),
                       reference(x, k, "same", "reflect"), "float64")
    before = len(plans)
    k[2, 3] += 1.0  # in place: the same array, other values
    assert_matches(fftconv.convolve(x, k, boundary="reflect"),
                   reference(x, k, "same", "reflect"), "float64")
    assert len(plans) > before
    with fftconv.config.set(backend="numpy", memory_limit="1GiB"):
        assert_matches(fftconv.convolve(x, k, boundary="reflect"),
                       reference(x, k, "same", "reflect"), "float64")
    y = random(rng, (33, 50), "float32")
    y[10, 10] = np.nan
    got = fftconv.convolve(y, k.astype(np.float32), boundary="reflect")
    assert np.isnan(got[10, 10]) and np.isfinite(got[30, 40])
    clean = np.where(np.isnan(y), 0, y)
    far = (slice(20, None), slice(20, None))
    assert_matches(got[far], reference(clean, k, "same", "reflect")[far], "float32")


@pytest.mark.parametrize("method", ["auto", "direct", "fft", "overlap-add"])
@pytest.mark.parametrize("kind, shape, axes", [
    ("general", (40, 36), None), ("separable", (40, 36), None), ("box", (40, 36), None),
    ("tiny", (40, 36), None), ("line", (3, 40, 36), (2,)), ("planes", (40, 3, 36), (0, 2)),
])
def test_a_kept_call_route_keeps_no_view_of_the_caller_s_kernel(rng, kind, shape, axes, method):
    """A route kept for a kernel's values is found again by another array with those
    values; it must not read the first array, which its caller may have changed since
    (the prepared OpenCV route once kept a view of it)."""
    k = {"separable": gaussian(5, 1.5), "general": random(rng, (5, 4), "float64"),
         "box": np.ones((5, 5)), "tiny": np.full((1, 1), 2.0), "line": random(rng, 5, "float64"),
         "planes": random(rng, (3, 4), "float64")}[kind]
    x = random(rng, shape, "float64")
    want = reference(x, k, "same", "reflect", axes=axes)
    first, same = k.copy(), k.copy()
    got = fftconv.convolve(x, first, boundary="reflect", axes=axes, method=method)
    assert_matches(got, want, "float64")
    first *= 3.0  # the caller reuses its array
    got = fftconv.convolve(x, same, boundary="reflect", axes=axes, method=method)
    assert_matches(got, want, "float64")


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_plans_while_the_parent_held_the_planning_locks():
    """Forked while the parent's threads held the locks of the kept routes, of structured
    pricing, of autotune and of the backend registry, the child's first convolve waited
    on them for ever; it now gets fresh locks."""
    import contextlib
    import os
    import warnings

    from fftconv._planning import autotune as _autotune
    from fftconv._planning import routes as _routes
    from fftconv._registry import discovery as _registry

    fftconv.convolve(np.ones((8, 8)), np.ones((3, 3)))  # the backend is loaded
    locks = [_routes.CALLS._routes._lock, pricing._structures._lock, pricing._choices._lock,
             _autotune._winners._lock, _registry._lock]
    with contextlib.ExitStack() as held, warnings.catch_warnings():
        for lock in locks:
            held.enter_context(lock)
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork + threads
        pid = os.fork()
        if pid == 0:
            try:
                with fftconv.config.set(autotune=True):
                    out = fftconv.convolve(np.ones((9, 7)), gaussian(5, 1.0))
                os._exit(0 if out.shape == (9, 7) else 1)
            finally:
                os._exit(2)
    child_finishes(pid, 20)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_calls_a_convolver_whose_routes_the_parent_held():
    """A Convolver's kept routes had a lock of their own that no fork renewed, beside the
    kept call routes' that was: forked while a parent's thread held it, the child's call
    waited for ever."""
    import os
    import warnings

    convolver = fftconv.Convolver(gaussian(5, 1.0))
    convolver(np.ones((9, 7)))  # the route is kept
    with convolver._routes._routes._lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork + threads
        pid = os.fork()
        if pid == 0:
            try:
                os._exit(0 if convolver(np.ones((9, 7))).shape == (9, 7) else 1)
            finally:
                os._exit(2)
    child_finishes(pid, 20)


def test_small_images_take_the_one_pass_route(rng):
    """Each pass of a separable kernel has a fixed cost: on a 60×57 image a 9×8 Gaussian's
    two passes took 118 µs against 71 for one 2-D pass, yet they were chosen.  A 15²
    Gaussian on 256² still takes them (220 µs against 650 by FFT)."""
    from fftconv._core import settings as _config

    def route(shape, k):
        request = build_request(np.zeros(shape, np.float32), k, "same", "constant", 0.0,
                                None, "auto", "propagate", None, flip=False)
        choice = pricing.choose(request, _config.resolve(), _engine.plan_request)
        return choice.structure.kind if choice else "plain"

    assert route((64, 64), gaussian(9, 2.0, "float32")) == "plain"
    assert route((128, 128), np.outer(*[gaussian(7, 1.2, "float32")[:, 3]] * 2)) == "plain"
    assert route((256, 256), gaussian(15, 2.5, "float32")) == "separable"
    assert route((32, 32), gaussian(15, 2.5, "float32")) == "separable"  # FFT costs more


def test_convolver_routes_stay_exact_through_nan_eviction_and_threads(rng):
    """Kept routes never stand for another shape, dtype or kernel; NaN stays local."""
    from concurrent.futures import ThreadPoolExecutor

    k = random(rng, (5, 4), "float64")
    conv = fftconv.Convolver(k, mode="full", boundary="mirror")
    images = [random(rng, (8 + n, 12), dtype) for n in range(40)
              for dtype in ("float32", "float64")]
    images[3][2, 5] = np.nan
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(conv, images + images))
    for image, out in zip(images + images, got):
        want = reference(image, k, "full", "mirror")
        assert out.dtype == np.float64 and np.array_equal(np.isnan(out), np.isnan(want))
        assert_matches(np.nan_to_num(out), np.nan_to_num(want), "float64")
    assert len(conv._routes) <= conv._routes.entries


def test_convolver_pickles_for_worker_processes(rng):
    """A Convolver inside a user's map_blocks reaches process workers (its caches' locks
    once made pickling fail); the copy keeps kernel, options and settings, not caches."""
    import pickle

    import dask.array as da

    k = random(rng, (4, 3), "float64")
    conv = fftconv.Convolver(k, boundary="reflect", correlate=True, workers=1)
    x = random(rng, (64, 48), "float64")
    conv(x)
    copy = pickle.loads(pickle.dumps(conv))
    assert repr(copy) == repr(conv) and copy.settings == conv.settings
    assert not copy.kernel.flags.writeable and len(copy._routes) == 0
    assert np.array_equal(copy(x), conv(x))
    blocks = da.from_array(x, chunks=(32, 24)).map_blocks(conv, dtype=np.float64)
    got = blocks.compute(scheduler="processes", num_workers=2)
    for i in (0, 32):
        for j in (0, 24):
            block = x[i:i + 32, j:j + 24]
            assert_matches(got[i:i + 32, j:j + 24],
                           reference(block, k, "same", "reflect", correlate=True), "float64")


def test_shared_spectrum_cache_is_bounded_and_opt_out(rng):
    from fftconv._methods.spectra import SHARED

    SHARED.clear()
    x = random(rng, (300, 300), "float32")
    for n in range(12):
        fftconv.convolve(x, random(rng, (31 + n, 31), "float32"), method="fft")
    assert 0 < len(SHARED) <= 8
    SHARED.clear()
    with fftconv.config.set(spectrum_cache=0):
        fftconv.convolve(x, random(rng, (31, 31), "float32"), method="fft")
    assert len(SHARED) == 0


def test_low_rank_pricing_plans_one_term_not_every_term(rng, monkeypatch):
    """A rank-r kernel is priced from one term's passes (it once planned all 2r of them)."""
    yy, xx = np.mgrid[-20:21, -20:21]
    disk = (yy**2 + xx**2 <= 400).astype(np.float64)  # symmetric: low rank, rank ~ 10
    calls = []
    original = _engine.plan_request
    monkeypatch.setattr(_engine, "plan_request", lambda *a: calls.append(1) or original(*a))
    x = random(rng, (300, 300), "float64")
    fftconv.convolve(x, disk)
    assert len(calls) <= 4


def test_data_like_kernels_skip_the_svd(rng, monkeypatch):
    """A kernel that is data (the adjoint's or estimate_kernel's block) is not priced as
    low rank when two terms already cost more than the plain route: a 256² one paid
    13 ms of SVD plus 1.7 s of trial ranks per call, 7 s a pass under dask's threads."""
    from fftconv._core import structure as _structure

    calls = []
    svd = np.linalg.svd
    monkeypatch.setattr(_structure.np.linalg, "svd",
                        lambda *a, **k: calls.append(k) or svd(*a, **k))
    x = random(rng, (120, 110), "float64")
    data = random(rng, (100, 90), "float64")
    got = fftconv.convolve(x, data, "valid")
    assert calls == []
    assert_matches(got, reference(x, data, "valid"), "float64")


def test_low_rank_tries_only_the_ranks_the_singular_values_allow(rng, monkeypatch):
    from fftconv._core import structure as _structure

    u, v = rng.standard_normal((2, 3, 64))
    k = sum(np.outer(u[r], v[r]) for r in range(3))
    found = analyze(k, (0, 1))
    assert found.kind == "low-rank" and len(found.terms) == 3
    rebuilt = sum(a * b for a, b in found.terms)
    np.testing.assert_allclose(rebuilt, k, atol=1e-10)
    calls = []
    svd = np.linalg.svd
    monkeypatch.setattr(_structure.np.linalg, "svd",
                        lambda *a, **kw: calls.append(kw) or svd(*a, **kw))
    assert analyze(random(rng, (100, 90), "float64"), (0, 1)).kind == "general"
    assert calls == [{"compute_uv": False}]  # the values said no rank could pass


# -- a box far larger than the image ---------------------------------------------------------

@pytest.mark.parametrize("boundary", ["reflect", "mirror", "nearest", "wrap"])
@pytest.mark.parametrize("n", [1, 2, 3, 8])
@pytest.mark.parametrize("k", [1, 2, 7, 30])
def test_extended_sums_equal_sums_of_the_extension(rng, boundary, n, k):
    from fftconv._core.boundary import extend
    from fftconv._methods.box import extended_sums

    x = rng.normal(size=(n, 3)) + 100  # an offset: the prefix sums must not cancel it away
    for first in (-45, -k, -3, 0, 2):
        lo, hi = min(first, 0), max(first + 6 + k, n)
        ext = extend(x, (0,), [(-lo, hi - n)], boundary)
        expected = [ext[first - lo + i: first - lo + i + k].sum(0) for i in range(6)]
        np.testing.assert_allclose(extended_sums(x, k, 0, boundary, first, 6), expected,
                                   rtol=1e-13)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("broadcast", [False, True])
def test_a_box_far_larger_than_the_image(rng, ran, mode, boundary, broadcast):
    x = random(rng, (9, 7), "float64")
    k = np.full((40, 33), 0.25) if not broadcast else np.broadcast_to(0.25, (40, 33))
    got = fftconv.convolve(x, k, mode, boundary=boundary, cval=2.0)
    assert ran == ["box"]
    assert_matches(got, reference(x, np.full((40, 33), 0.25), mode, boundary, cval=2.0),
                   "float64")


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_a_broadcast_box_is_never_built_nor_extended(rng, boundary):
    """``box:size=20000`` on a 128² image built a 20000² kernel (2.98 GiB), then the
    boundary's extension of the image (20127², 6.3 GiB at the peak, 25 s); one value
    broadcast over the box's shape is a box, summed without extending the image."""
    import tracemalloc

    x = random(rng, (64, 64), "float32")
    k = np.broadcast_to(np.float32(1 / 3000**2), (3000, 3000))
    tracemalloc.start()
    try:
        got = fftconv.convolve(x, k, boundary=boundary)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # the 3063² extension alone is 36 MiB
    assert got.shape == x.shape and got.dtype == np.float32
    small = np.broadcast_to(np.float32(1 / 150**2), (150, 150))
    assert_matches(fftconv.convolve(x, small, boundary=boundary),
                   reference(x, np.full((150, 150), 1 / 150**2), "same", boundary), "float32")


@pytest.mark.parametrize("boundary", ["reflect", "mirror", "wrap", "nearest"])
def test_long_extensions_repeat_the_rule_whatever_the_numpy(rng, boundary):
    """NumPy 1.26's ``np.pad`` broke the period of an extension longer than the image
    on both sides by different amounts (``[1, 2]`` by (45, 1), ``symmetric``:
    ``1 1 2 2 1 1 2 2 2 2 1 1``): the box route, periodic by construction, then
    disagreed with every other route.  Extensions are made from one index map."""
    from fftconv._core.boundary import extend

    x = rng.normal(size=(2, 3))
    period = {"reflect": [0, 1, 1, 0], "mirror": [0, 1], "wrap": [0, 1]}.get(boundary)
    got = extend(x, (0,), [(45, 1)], boundary)
    positions = np.arange(-45, 3)
    if period is None:
        index = np.clip(positions, 0, 1)
    else:
        index = np.array(period)[positions % len(period)]
    np.testing.assert_array_equal(got, x[index])
    k = np.full((91, 2), 0.5)  # a box: its route and the plain one agree
    np.testing.assert_allclose(fftconv.convolve(x, k, boundary=boundary),
                               fftconv.convolve(x, k, boundary=boundary, method="direct"),
                               rtol=1e-12)


def test_a_convolver_with_a_registered_backend_object_pickles(rng):
    """A Convolver made with ``backend=load_backend("pyfftw")`` could not be pickled
    (``cannot pickle 'module' object``): it travels by the backend's name."""
    import pickle

    from fftconv._registry import load_backend

    k, x = random(rng, (5, 4), "float64"), random(rng, (40, 30), "float64")
    for name in ("pyfftw", "scipy", "numpy"):
        conv = fftconv.Convolver(k, method="fft", backend=load_backend(name))
        copy = pickle.loads(pickle.dumps(conv))
        assert copy.settings.backend == name
        np.testing.assert_array_equal(copy(x), conv(x))


def test_a_convolver_times_its_plan_against_convolves_and_keeps_the_faster(rng, monkeypatch):
    """A Convolver's planner, its kernel spectra kept, preferred a full FFT to convolve's
    overlap-add at 4096² ⊛ 63² float32 and ran 1.6× slower (240 against 88 ms): where the
    two plans differ, both are timed on real calls and the faster stays."""
    import functools
    import time
    import types

    from fftconv._planning import routes

    ran = []
    original = routes.general_route

    def fake(request, settings, spectra=None, kernel_ready=None):
        real = original(request, settings, spectra)
        name = "cold" if kernel_ready is False else "kept"

        def run(request, plan):
            ran.append(plan.method)
            time.sleep(0.03 if plan.method == "kept" else 0.0)
            return real(request)

        return functools.partial(run, plan=types.SimpleNamespace(
            method=name, fft_shape=None, block_shape=None))

    monkeypatch.setattr(routes, "general_route", fake)
    monkeypatch.setattr(routes, "route", lambda request, settings, spectra, passes: fake(
        request, settings, spectra))
    k, x = random(rng, (5, 5), "float64"), random(rng, (40, 40), "float64")
    conv = fftconv.Convolver(k, boundary="reflect")
    for _ in range(8):
        assert_matches(conv(x), reference(x, k, "same", "reflect"), "float64")
    assert ran == ["kept", "cold", "kept", "cold", "kept", "cold", "cold", "cold"]
