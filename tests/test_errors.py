"""Every wrong argument is a clear ValueError or TypeError (SPEC §1.6)."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv

X = np.ones((6, 6))
K = np.ones((3, 3))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "half"}, ValueError, "mode='half' is not one of 'full', 'same', 'valid'"),
    ({"boundary": "bounce"}, ValueError, "boundary='bounce' is not one of 'constant'"),
    ({"method": "winograd"}, ValueError, "method='winograd' is not one of"),
    ({"nan_policy": "omit"}, ValueError, "nan_policy='omit' is not one of"),
    ({"backend": "cufft"}, ValueError, "backend='cufft' is not one of the registered"),
    ({"axes": (0, 0)}, ValueError, "duplicate"),
    ({"axes": (0, 5)}, ValueError, "out of range"),
    ({"axes": ()}, ValueError, "convolves nothing"),
    ({"axes": ("a",)}, TypeError, "axes="),
    ({"workers": 0}, ValueError, "workers"),
    ({"workers": "many"}, ValueError, "workers"),
    ({"dtype": "int32"}, TypeError, "floating or complex"),
    ({"cval": "zero"}, TypeError, "cval"),
    ({"cval": 1j}, TypeError, "complex"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fftconv.convolve(X, K, **kwargs)


def test_unknown_backend_lists_available():
    with pytest.raises(ValueError, match="available: 'scipy', 'pyfftw', 'numpy'"):
        fftconv.convolve(X, K, backend="nope")


@pytest.mark.parametrize("image, kernel, kwargs, match", [
    (np.ones(5), np.ones((2, 2)), {}, "kernel.ndim=2 must equal image.ndim=1"),
    (np.ones((5, 5, 5)), np.ones((2, 2)), {"axes": (0,)}, "fits neither"),
    (np.ones((5, 4)), np.ones((2, 3)), {"axes": 0}, "do not broadcast"),
    (np.ones((0, 5)), K, {}, "image is empty"),
    (X, np.ones((3, 0)), {}, "kernel is empty"),
    (np.float64(3), K, {}, "at least one dimension"),
    (np.ones((2, 2)), K, {"mode": "valid"}, "valid"),
    (np.array([["a"]]), K[:1, :1], {}, "string"),
    (np.array([[None]]), K[:1, :1], {}, "object"),
    (np.array([["2020-01-01"]], dtype="datetime64[D]"), K[:1, :1], {}, "datetime"),
])
def test_bad_arrays(image, kernel, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fftconv.convolve(image, kernel, **kwargs)


def test_complex_result_cannot_be_cast_to_real():
    with pytest.raises(TypeError, match="imaginary"):
        fftconv.convolve(X + 1j, K, dtype="float64")


def test_ragged_input_is_a_type_error():
    with pytest.raises((TypeError, ValueError), match="image"):
        fftconv.convolve([[1, 2], [3]], K)


def test_huge_forced_direct_kernel_does_not_allocate_offsets():
    """scipy.ndimage would allocate ~8·K⁴ bytes; our direct path works in stripes."""
    import tracemalloc

    x = np.ones((40, 40), dtype=np.float32)
    k = np.ones((35, 35), dtype=np.float32)
    tracemalloc.start()
    fftconv.convolve(x, k, mode="valid", method="direct")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * 35**4 / 10
