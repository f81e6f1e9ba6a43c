"""estimate_kernel: the least-squares kernel, by CGLS on FFT convolutions.

Minimises ``‖(convolve(image, k, mode, boundary) − output)[mask]‖² + λ‖k‖²``.
Each iteration applies the forward convolution once and its kernel
transpose once (both through the planner, so FFT for large sizes); nothing
of size (pixels × taps) is ever formed.  CGLS (conjugate gradients on the
normal equations without forming them) works in float64, so exact data gives
the kernel to round-off.  Dask inputs go to :mod:`fftconv._ops.lazy_estimate`,
which runs the same iteration out of core.
"""

from __future__ import annotations

import numpy as np

from fftconv._core.lazy import is_dask_array
from fftconv._core.masks import refuse_masked
from fftconv._ops.api import convolve
from fftconv._ops.kernel_fit import (
    KernelFit,
    check_mask,
    default_maxiter,
    reported,
    transposes,
)


def estimate_kernel(image, output, kernel_shape, mode="same", *, boundary="constant",
                    mask=None, regularization=0.0, tol=1e-13, maxiter=None,
                    full_output=False, callback=None):
    """The kernel ``k`` that best maps ``image`` to ``output`` (least squares).

    Parameters
    ----------
    image, output : array_like or dask.array.Array
        The known input and the observed result of ``convolve(image, k, mode, boundary)``.
    kernel_shape : tuple of int
    mode, boundary
        How ``output`` was produced (as in :func:`fftconv.convolve`).
    mask : array_like of bool or dask.array.Array, optional
        Output pixels that are known (e.g. excluding a blank border).
    regularization : float
        Tikhonov weight ``λ`` on ``‖k‖²`` (for noisy data).
    tol, maxiter
        Stop when the normal-equation residual falls below ``tol`` relative to
        its start, or after ``maxiter`` iterations (default: twice the number
        of taps, at least 50).
    full_output : bool
        Also return a :class:`KernelFit` with the residual.
    callback : callable, optional
        Called after every iteration as ``callback(iteration, kernel,
        progress)``: the kernel so far (a copy) and the normal-equation
        residual relative to its start, which ``tol`` bounds.  Raising
        ``StopIteration`` ends the iteration there (the fit says whether it
        had converged).  Out of core, where each iteration is a pass over the
        image, it shows progress; it runs where the solve runs (this process
        on dask's local schedulers, a worker under dask.distributed).

    Returns
    -------
    kernel : ndarray (float64)
        A lazy dask array when any input is one (SPEC §2): computing it runs
        the iteration out of core, one pass over the image's blocks per
        iteration, each pass a computation on the scheduler in effect.
    fit : KernelFit
        With ``full_output``; for dask inputs a lazy one (a dask collection):
        ``dask.compute(kernel, fit)`` solves once for both.

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> rng = np.random.default_rng(0)
    >>> x, k = rng.random((64, 64)), rng.random((5, 5))
    >>> y = fftconv.convolve(x, k, boundary="reflect")
    >>> k_hat, fit = fftconv.estimate_kernel(x, y, (5, 5), boundary="reflect", full_output=True)
    >>> bool(np.allclose(k_hat, k, atol=1e-10)), fit.relative_residual < 1e-12
    (True, True)
    """
    refuse_masked(image, "image")
    refuse_masked(output, "output", "mark the known pixels with mask= instead "
                  "(mask=~np.ma.getmaskarray(output))")
    refuse_masked(mask, "mask")
    if any(is_dask_array(a) for a in (image, output, mask)):
        from fftconv._ops import lazy_estimate as _lazy_estimate

        return _lazy_estimate.estimate(image, output, kernel_shape, mode, boundary, mask,
                                       regularization, tol, maxiter, full_output, callback)
    image = np.asarray(image, dtype=np.float64)
    target = np.asarray(output, dtype=np.float64)
    ops = transposes(image, target.shape, kernel_shape, mode, boundary, regularization)
    kernel_shape = ops.request.kernel.shape
    weight = np.ones(target.shape) if mask is None else np.asarray(mask, dtype=bool)
    check_mask(np.shape(weight), target.shape)
    weight = weight.astype(np.float64)

    def forward(k):
        return convolve(image, k, mode, boundary=boundary) * weight

    def transpose(r):
        return ops.kernel_transpose(ops.padded(r * weight))

    k, iterations, converged = _cgls(forward, transpose, target * weight, kernel_shape,
                                     regularization, tol,
                                     maxiter or default_maxiter(kernel_shape), callback)
    residual = float(np.linalg.norm(forward(k) - target * weight))
    norm = float(np.linalg.norm(target * weight)) or 1.0
    fit = KernelFit(residual, residual / norm, iterations, converged)
    return (k, fit) if full_output else k


def _cgls(forward, transpose, b, shape, lam, tol, maxiter, callback=None):
    """CGLS for min ‖A k − b‖² + λ‖k‖² (Björck; stable without forming AᵀA)."""
    k = np.zeros(shape)
    r = b.copy()
    s = transpose(r)
    p = s.copy()
    gamma = gamma0 = float(np.vdot(s, s))
    if gamma0 == 0:
        return k, 0, True
    for iteration in range(1, maxiter + 1):
        q = forward(p)
        delta = float(np.vdot(q, q)) + lam * float(np.vdot(p, p))
        alpha = gamma / delta
        k += alpha * p
        r -= alpha * q
        s = transpose(r) - lam * k
        gamma_new = float(np.vdot(s, s))
        if gamma_new <= (tol**2) * gamma0:
            reported(callback, iteration, k, gamma_new, gamma0)
            return k, iteration, True
        if not reported(callback, iteration, k, gamma_new, gamma0):
            return k, iteration, False
        p = s + (gamma_new / gamma) * p
        gamma = gamma_new
    return k, maxiter, False
