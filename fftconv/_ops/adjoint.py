"""convolve_vjp / correlate_vjp: exact adjoints of the forward call, through the planner.

Forward (SPEC §1.1): ``out = crop(valid(extend(x) ⊛ k))``.  Its transpose:

* w.r.t. the image: the crop's transpose zero-pads the cotangent ``c`` back to
  the full result, a full convolution with the flipped kernel maps it onto the
  extended image, and :func:`fftconv._core.boundary.fold` adds each extended value
  back onto the pixel it copied;
* w.r.t. the kernel: a valid convolution of the extended image with the
  flipped, zero-padded cotangent, flipped back.

Both are ordinary convolutions, so the planner picks direct or FFT for them
(a large kernel's gradient costs two FFT convolutions).  Broadcast axes are
summed back to each argument's shape.  The convention is JAX's: the transpose
(no complex conjugation), so ``<J v, c> == <v, Jᵀ c>`` with ``<a, b> = sum(a * b)``.
Dask arguments go to :mod:`fftconv._ops.lazy_adjoint`, which builds the same two
transposes lazily.
"""

from __future__ import annotations

import numpy as np

from fftconv._core.lazy import is_dask_array
from fftconv._core.masks import refuse_masked
from fftconv._ops.transposes import Transposes, to_kernel_layout


def _vjp(image, kernel, cotangent, mode, boundary, axes, *, flip: bool):
    for value, name in ((image, "image"), (kernel, "kernel"), (cotangent, "cotangent")):
        refuse_masked(value, name)
    if any(is_dask_array(a) for a in (image, kernel, cotangent)):
        from fftconv._ops import lazy_adjoint as _lazy_adjoint

        return _lazy_adjoint.vjp(image, kernel, cotangent, mode, boundary, axes, flip=flip)
    t = Transposes(image, kernel, mode, boundary, axes, flip=flip)
    padded = t.padded(cotangent)
    grad_k = t.kernel_transpose(padded)
    if flip:  # correlate used conj(flip(kernel)): take the flip back (transpose, no conj)
        grad_k = np.flip(grad_k, axis=t.axes)
    return t.image_transpose(padded), to_kernel_layout(grad_k, kernel, t.axes, axes)


def convolve_vjp(image, kernel, cotangent, mode="same", *, boundary="constant", axes=None):
    """Gradients of ``sum(cotangent * convolve(image, kernel, mode, boundary, axes))``.

    Returns
    -------
    grad_image, grad_kernel : ndarray
        Shaped like ``image`` and ``kernel``.  Lazy dask arrays when ``image`` or
        ``cotangent`` is one (the image's gradient chunked like the image).

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> x, k = np.arange(5.0), np.array([1.0, 2.0, 3.0])
    >>> c = np.ones(5)
    >>> gx, gk = fftconv.convolve_vjp(x, k, c)
    >>> v = np.eye(5)[1]                      # <J v, c> == <v, Jᵀ c>
    >>> bool(np.isclose((fftconv.convolve(v, k) * c).sum(), (v * gx).sum()))
    True
    """
    return _vjp(image, kernel, cotangent, mode, boundary, axes, flip=False)


def correlate_vjp(image, kernel, cotangent, mode="same", *, boundary="constant", axes=None):
    """Gradients of ``sum(cotangent * correlate(image, kernel, ...))`` (the backward pass
    of a CNN layer, whose "convolution" is a correlation).

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> gx, gk = fftconv.correlate_vjp(x, np.ones((3, 3)), np.ones((2, 2)), mode="valid")
    >>> gk
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    """
    return _vjp(image, kernel, cotangent, mode, boundary, axes, flip=True)
