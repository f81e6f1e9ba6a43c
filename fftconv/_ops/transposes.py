"""The forward call's two transposes (w.r.t. the image and the kernel), in memory.

Forward (SPEC §1.1): ``out = crop(valid(extend(x) ⊛ k))``.  Its transpose:

* w.r.t. the image: the crop's transpose zero-pads the cotangent ``c`` back to
  the full result, a full convolution with the flipped kernel maps it onto the
  extended image, and :func:`fftconv._core.boundary.fold` adds each extended
  value back onto the pixel it copied;
* w.r.t. the kernel: a valid convolution of the extended image with the
  flipped, zero-padded cotangent, flipped back.

Shared by the adjoints (:mod:`.adjoint`, :mod:`.lazy_adjoint`) and the kernel
estimate (:mod:`.kernel_fit`).
"""

from __future__ import annotations

import numpy as np

from fftconv._core.boundary import extend, fold
from fftconv._core.request import build_request
from fftconv._ops.api import convolve


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes where an argument of ``shape`` was broadcast."""
    axes = tuple(ax for ax, (g, n) in enumerate(zip(grad.shape, shape)) if n == 1 and g != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class Transposes:
    """The forward call's pieces, prepared once, and its two transposes."""

    def __init__(self, image, kernel, mode, boundary, axes, *, flip: bool,
                 dtype=None) -> None:
        request = build_request(image, kernel, mode, boundary, 0.0, axes, "auto", "propagate",
                                dtype, flip=flip)
        self.request = request
        x, k, conv_axes = request.image, request.kernel, request.axes
        self.axes = conv_axes
        self.pads = [(k.shape[ax] - 1, k.shape[ax] - 1) for ax in conv_axes]
        full = [max(a, b) for a, b in zip(x.shape, k.shape)]
        index = [slice(None)] * x.ndim
        for ax, (a, b) in zip(conv_axes, request.windows):
            full[ax] = x.shape[ax] + k.shape[ax] - 1
            index[ax] = slice(a, b)
        self.full_shape = tuple(full)
        self.crop = tuple(index)
        self.out_shape = tuple(np.empty(self.full_shape, dtype=bool)[self.crop].shape)
        self._extended: np.ndarray | None = None

    @property
    def extended(self) -> np.ndarray:
        if self._extended is None:
            r = self.request
            self._extended = extend(r.image, self.axes, self.pads, r.boundary)
        return self._extended

    def padded(self, cotangent) -> np.ndarray:
        """The crop's transpose: the cotangent placed in the full result, zeros elsewhere."""
        cot = np.asarray(cotangent, dtype=self.request.dtype)
        if cot.shape != self.out_shape:
            raise ValueError(f"cotangent has shape {cot.shape}; the forward result has "
                             f"shape {self.out_shape}")
        padded = np.zeros(self.full_shape, dtype=self.request.dtype)
        padded[self.crop] = cot
        return padded

    def image_transpose(self, padded: np.ndarray) -> np.ndarray:
        k = self.request.kernel
        grad_ext = convolve(padded, np.flip(k, axis=self.axes), "full", axes=self.axes)
        folded = fold(grad_ext, self.axes, self.pads, self.request.boundary)
        return unbroadcast(folded, self.request.image.shape)

    def kernel_transpose(self, padded: np.ndarray) -> np.ndarray:
        """Gradient w.r.t. the convolution-oriented (aligned) kernel."""
        grad = convolve(self.extended, np.flip(padded, axis=self.axes), "valid", axes=self.axes)
        return np.flip(unbroadcast(grad, self.request.kernel.shape), axis=self.axes)


def to_kernel_layout(grad_k: np.ndarray, kernel, conv_axes, axes) -> np.ndarray:
    """Back to the kernel's own ndim when it was applied per slice (``len(axes)`` dims)."""
    kernel = np.asarray(kernel)
    if kernel.ndim == grad_k.ndim:
        return grad_k
    given = tuple(a % grad_k.ndim for a in np.atleast_1d(axes))
    squeezed = grad_k.sum(axis=tuple(ax for ax in range(grad_k.ndim) if ax not in conv_axes))
    # squeezed has the kernel's axes in sorted image order; reorder to the order given
    order = np.argsort(np.argsort(given))
    return squeezed.transpose(tuple(int(i) for i in order))  # a dask array wants a tuple
