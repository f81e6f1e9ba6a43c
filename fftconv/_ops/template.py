"""match_template: zero-normalized cross-correlation from one correlation and window sums.

``ncc = Σ(W − W̄)(T − T̄) / sqrt(Σ(W − W̄)² · Σ(T − T̄)²)`` for every window ``W``.
The numerator is one correlation with the zero-mean template (the planner
picks FFT or direct); the window statistics are running sums in float64 of the
image with its global mean removed, so a large offset cannot cancel them
(skimage #1712).  Windows whose variance is at round-off level give 0.
"""

from __future__ import annotations

import numpy as np

from fftconv import _tiling
from fftconv._core.lazy import as_dask_array, is_dask_array, is_dataarray, unwrap_lazy
from fftconv._core.masks import refuse_masked
from fftconv._core.request import as_array, result_dtype
from fftconv._core.shapes import BOUNDARIES, check_choice, output_window
from fftconv._methods.box import window_moments
from fftconv._ops import labelled
from fftconv._ops.api import correlate


def _window_moments(image, template_shape, mode, boundary, weights):
    """Σw·x and Σw·x² over every window, in float64."""
    if weights is None:
        return window_moments(image, template_shape, mode, boundary)
    s1 = correlate(image, weights, mode, boundary=boundary, dtype=np.float64)
    s2 = correlate(image * image, weights, mode, boundary=boundary, dtype=np.float64)
    return s1, s2


def _out_shape(image_shape, template_shape, mode):
    return tuple(b - a for a, b in (output_window(n, k, mode)
                                    for n, k in zip(image_shape, template_shape)))


def match_template(image, template, mode="valid", *, boundary="constant", mask=None):
    """Zero-normalized cross-correlation of ``template`` at every position, in [-1, 1].

    Parameters
    ----------
    image, template : array_like
        Same ndim; any ndim.  A dask ``image`` gives a lazy dask result: the
        correlation and the window moments are tiled with halos like
        :func:`fftconv.convolve`, nothing is computed while the graph is built.
    mode : {'valid', 'same', 'full'}
        ``'valid'`` equals ``skimage.feature.match_template(image, template)``;
        ``'same'`` is centred like :func:`fftconv.correlate`.
    boundary : str
        Boundary rule for windows that reach beyond the image.
    mask : array_like of bool, optional
        Template pixels that count (OpenCV's ``mask``); others are ignored.

    Returns
    -------
    ndarray
        float32 for float32 / integer inputs, float64 for float64.  1 where the
        template appears exactly (up to brightness and contrast); 0 where a
        window has no variance.

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> rng = np.random.default_rng(0)
    >>> image = rng.random((40, 50))
    >>> scores = fftconv.match_template(image, 3 * image[10:18, 20:30] + 1)
    >>> [int(i) for i in np.unravel_index(scores.argmax(), scores.shape)]
    [10, 20]
    >>> round(float(scores.max()), 6)
    1.0
    """
    if is_dataarray(image) or is_dataarray(template):
        return labelled.apply(image, template, None, lambda data, t, _: match_template(
            data, t, mode, boundary=boundary, mask=mask))
    image, template = unwrap_lazy(image), unwrap_lazy(template)
    check_choice("boundary", boundary, BOUNDARIES)
    refuse_masked(image, "image")
    refuse_masked(template, "template", "mark the pixels to match with mask= instead "
                  "(mask=~np.ma.getmaskarray(template))")
    refuse_masked(mask, "mask")
    lazy = is_dask_array(image) or is_dask_array(template)
    if lazy:  # the template is small: it is computed now, as a dask kernel is
        image = as_dask_array(image)
        _tiling.check_known_chunks(image)
    else:
        image = as_array(image, "image")
    template = as_array(template, "template")
    out_dtype = result_dtype(image, template, None)
    if out_dtype.kind == "c":
        raise TypeError("match_template needs real image and template")
    if template.ndim != image.ndim:
        raise ValueError(f"template.ndim={template.ndim} must equal image.ndim={image.ndim}")
    weights = None
    if mask is not None:
        weights = np.asarray(mask, dtype=bool)
        if weights.shape != template.shape:
            raise ValueError(f"mask has shape {weights.shape}; the template has {template.shape}")
        if not weights.any():
            raise ValueError("mask selects no template pixel")
        weights = weights.astype(np.float64)
    count = float(template.size if weights is None else weights.sum())
    t = template.astype(np.float64)
    w = 1.0 if weights is None else weights
    t_zero = (t - (t * w).sum() / count) * w
    t_energy = float((t_zero**2).sum())
    if t_energy <= np.finfo(np.float64).eps * count * float(np.abs(t).max()) ** 2:
        if lazy:
            import dask.array as da

            return da.zeros(_out_shape(image.shape, template.shape, mode), dtype=out_dtype)
        return np.zeros(_out_shape(image.shape, template.shape, mode), dtype=out_dtype)
    if lazy:
        return _lazy_scores(image, t_zero, weights, count, t_energy, mode, boundary, out_dtype)
    centred = np.subtract(image, image.mean(dtype=np.float64), dtype=out_dtype)
    numerator = correlate(centred, t_zero.astype(out_dtype), mode, boundary=boundary)
    s1, s2 = _window_moments(centred, template.shape, mode, boundary, weights)
    scale = max(float(centred.max()), -float(centred.min())) ** 2 * count
    del centred
    return _scores(numerator, s1, s2, scale, count, t_energy)


def _scores(numerator: np.ndarray, s1: np.ndarray, s2: np.ndarray, scale, count: float,
            t_energy: float) -> np.ndarray:
    """The scores from the numerator and the window moments Σx, Σx² (float64), in place.

    ``scale`` (max |x|² · count) sets the level below which a window counts as
    flat; the result has ``numerator``'s dtype.
    """
    out_dtype = numerator.dtype
    # Σ(W − W̄)² = Σx² − (Σx)²/count cancels: float64, in place (image-sized arrays).
    np.multiply(s1, s1, out=s1)
    s1 /= count
    variance = np.subtract(s2, s1, out=s2)
    del s1
    flat = variance <= np.finfo(out_dtype).eps * 8 * max(float(scale), np.finfo(np.float64).tiny)
    # Past the cancellation the output precision is enough: the square root and
    # the division run in the output dtype (half the memory traffic for float32).
    denominator = variance.astype(out_dtype)
    del variance
    # Round-off can leave flat windows slightly negative (NaN here): zeroed below.
    with np.errstate(all="ignore"):
        np.sqrt(denominator, out=denominator)
        denominator *= out_dtype.type(np.sqrt(t_energy))
        ncc = np.divide(numerator, denominator, out=numerator)
    ncc[flat] = 0.0
    np.clip(ncc, -1.0, 1.0, out=ncc)
    return ncc


def _lazy_scores(image, t_zero, weights, count, t_energy, mode, boundary, out_dtype):
    """match_template of a dask ``image``: the same sums as correlations, tiled lazily.

    The numerator and both window moments are :func:`fftconv.correlate` calls on
    the dask array (halo tiling; a box of ones takes the running-sum route on
    each tile, in float64); the mean and the scale are dask reductions and
    :func:`_scores` runs per block, so nothing is computed while the graph is built.
    """
    import dask.array as da

    ones = np.ones(t_zero.shape) if weights is None else weights
    centred = (image - image.mean(dtype=np.float64)).astype(out_dtype)
    numerator = correlate(centred, t_zero.astype(out_dtype), mode, boundary=boundary)
    wide = centred.astype(np.float64)
    s1 = correlate(wide, ones, mode, boundary=boundary, dtype=np.float64)
    s2 = correlate(wide * wide, ones, mode, boundary=boundary, dtype=np.float64)
    scale = da.maximum(centred.max(), -centred.min()).astype(np.float64) ** 2 * count
    # Each task's blocks are its own (fresh outputs of the correlations): in place is safe.
    return da.map_blocks(_scores, numerator, s1, s2, scale, count, t_energy, dtype=out_dtype)
