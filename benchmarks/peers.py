"""Every contender computes the same thing: 'same' convolution with a zero boundary.

Each entry is ``setup(image, kernel) -> call``; setup may prepare plans (the
floor does), the returned zero-argument call is what is timed.
"""

from __future__ import annotations

import numpy as np

import fftconv


def _fftconv(**kwargs):
    def setup(image, kernel):
        return lambda: fftconv.convolve(image, kernel, **kwargs)

    return setup


def _scipy_fftconvolve(image, kernel):
    import scipy.signal

    return lambda: scipy.signal.fftconvolve(image, kernel, mode="same")


def _scipy_oaconvolve(image, kernel):
    import scipy.signal

    return lambda: scipy.signal.oaconvolve(image, kernel, mode="same")


def _scipy_ndimage(image, kernel):
    import scipy.ndimage

    # ndimage centres even kernels differently; the benchmark uses odd kernels only.
    return lambda: scipy.ndimage.convolve(image, kernel, mode="constant")


def _opencv(image, kernel):
    import cv2

    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    return lambda: cv2.filter2D(image, -1, flipped, borderType=cv2.BORDER_CONSTANT)


def _astropy(image, kernel):
    from astropy.convolution import convolve_fft

    # The same sum as everyone else's: no kernel normalisation, zeros outside, no NaN
    # interpolation.  Everything else as users call it: its default padding to a power
    # of two, in float64 (astropy upcasts), allow_huge for arrays over 1 GiB.
    return lambda: convolve_fft(image, kernel, boundary="fill", fill_value=0.0,
                                normalize_kernel=False, nan_treatment="fill", allow_huge=True)


def _pyfftw_floor(image, kernel):
    """One rfft2, the product and one irfft2 at fftconv's padded size, plans and spectrum ready."""
    import pyfftw

    plan = fftconv.plan(image.shape, kernel.shape, method="fft", backend="pyfftw")
    shape = plan.fft_shape
    half = (shape[0], shape[1] // 2 + 1)
    real = pyfftw.empty_aligned(shape, dtype=image.dtype)
    spec = pyfftw.empty_aligned(half, dtype=np.complex64 if image.dtype == np.float32
                                else np.complex128)
    out = pyfftw.empty_aligned(shape, dtype=image.dtype)
    forward = pyfftw.FFTW(real, spec, axes=(0, 1), flags=("FFTW_MEASURE",), threads=2)
    inverse = pyfftw.FFTW(spec, out, axes=(0, 1), direction="FFTW_BACKWARD",
                          flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"), threads=2)
    real[...] = 0
    real[: kernel.shape[0], : kernel.shape[1]] = kernel
    kernel_spectrum = forward().copy()
    n0, n1 = image.shape

    def call():
        real[:n0, :n1] = image
        real[n0:, :] = 0
        real[:n0, n1:] = 0
        spectrum = forward()
        spectrum *= kernel_spectrum
        return inverse()

    return call


CONTENDERS = {
    "fftconv auto": _fftconv(),
    "fftconv fft/scipy": _fftconv(method="fft", backend="scipy"),
    "fftconv fft/pyfftw": _fftconv(method="fft", backend="pyfftw"),
    "fftconv overlap-add": _fftconv(method="overlap-add"),
    "fftconv direct": _fftconv(method="direct"),
    "scipy fftconvolve": _scipy_fftconvolve,
    "scipy oaconvolve": _scipy_oaconvolve,
    "scipy.ndimage": _scipy_ndimage,
    "cv2.filter2D": _opencv,
    "astropy convolve_fft": _astropy,
    "floor (pyfftw)": _pyfftw_floor,
}
PEERS = ("scipy fftconvolve", "scipy oaconvolve", "scipy.ndimage", "cv2.filter2D",
         "astropy convolve_fft")


def applies(name: str, n: int, k: int) -> bool:
    """Skip what would take minutes or exhaust memory (ndimage: ~8·K⁴ bytes of offsets)."""
    if name in ("fftconv direct", "scipy.ndimage"):
        return k <= 15
    return True
