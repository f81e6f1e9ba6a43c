"""The slow, obvious reference of SPEC §1.1: np.pad, then a sum over every kernel tap."""

from __future__ import annotations

import itertools

import numpy as np

PAD = {"constant": "constant", "reflect": "symmetric", "mirror": "reflect",
       "nearest": "edge", "wrap": "wrap"}


def reference(image, kernel, mode="same", boundary="constant", cval=0.0, axes=None,
              correlate=False):
    """Exact result in float64 / complex128, straight from the definition."""
    image = np.asarray(image)
    kernel = np.asarray(kernel)
    wide = np.complex128 if any(np.iscomplexobj(a) for a in (image, kernel, cval)) \
        else np.float64
    image = image.astype(wide)
    kernel = kernel.astype(wide)
    if axes is None:
        axes = tuple(range(image.ndim))
    axes = tuple(a % image.ndim for a in np.atleast_1d(axes))
    if kernel.ndim < image.ndim:
        kernel = kernel.reshape(kernel.shape + (1,) * (image.ndim - kernel.ndim))
        kernel = np.moveaxis(kernel, range(len(axes)), axes)
    if correlate:
        kernel = np.conj(np.flip(kernel, axis=axes))
    width = [(0, 0)] * image.ndim
    for ax in axes:
        width[ax] = (kernel.shape[ax] - 1,) * 2
    if boundary == "constant":
        ext = np.pad(image, width, mode="constant", constant_values=cval)
    else:
        ext = np.pad(image, width, mode=PAD[boundary])
    full_len = {ax: image.shape[ax] + kernel.shape[ax] - 1 for ax in axes}
    out_shape = [full_len.get(ax, max(n, k)) for ax, (n, k) in
                 enumerate(zip(image.shape, kernel.shape))]
    full = np.zeros(out_shape, dtype=wide)
    for tap in itertools.product(*(range(kernel.shape[ax]) for ax in axes)):
        kidx = [slice(None)] * image.ndim
        src = [slice(None)] * image.ndim
        for ax, t in zip(axes, tap):
            kidx[ax] = slice(t, t + 1)
            start = kernel.shape[ax] - 1 - t
            src[ax] = slice(start, start + full_len[ax])
        full = full + kernel[tuple(kidx)] * ext[tuple(src)]
    crop = [slice(None)] * image.ndim
    for ax in axes:
        n, k = image.shape[ax], kernel.shape[ax]
        if mode == "same":
            s = (k - 1) // 2
            crop[ax] = slice(s, s + n)
        elif mode == "valid":
            crop[ax] = slice(k - 1, n)
    return full[tuple(crop)]


def assert_matches(result, expected, dtype):
    """SPEC §1.3 accuracy: 1e-5 (single) / 1e-11 (double) of max|reference|."""
    result = np.asarray(result)
    assert result.shape == expected.shape, (result.shape, expected.shape)
    assert result.dtype == np.dtype(dtype), (result.dtype, dtype)
    single = np.dtype(dtype) in (np.dtype("float32"), np.dtype("complex64"))
    tol = (1e-5 if single else 1e-11) * max(np.abs(expected).max(), 1e-300)
    err = np.abs(result - expected).max()  # promoted: a complex result to a real reference too
    assert err <= tol, f"max error {err:.3g} > {tol:.3g}"
