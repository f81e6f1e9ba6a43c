"""The kernels users ask for by name, each summing to 1 (public as :mod:`fftconv.kernels`).

Sizes are in pixels; one value serves every axis, a sequence gives one per
axis (and the number of dimensions).  The Gaussian is the one
``scipy.ndimage.gaussian_filter`` applies, so ``convolve(x, gaussian(s),
boundary="reflect")`` is ``gaussian_filter(x, s)``; the box is one value
broadcast over its shape, built in no memory and run by running sums
however large.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _per_axis(value, ndim: int | None, name: str, default_ndim: int = 2) -> tuple[float, ...]:
    values = tuple(np.atleast_1d(np.asarray(value, dtype=np.float64)).tolist())
    if ndim is None:
        ndim = len(values) if np.ndim(value) else default_ndim
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim or ndim < 1:
        raise ValueError(f"{name}={value!r} gives {len(values)} values for ndim={ndim}")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"{name}={value!r} must be finite and >= 0")
    return values


def _outer(factors: Sequence[np.ndarray]) -> np.ndarray:
    kernel = np.ones((), dtype=np.float64)
    for factor in factors:
        kernel = np.multiply.outer(kernel, factor)
    return kernel


def gaussian_weights(sigma: float, order: int, radius: int) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian (``order`` 0) or its derivative, ``2 * radius + 1`` long.

    The derivative of order ``n`` is ``q(x) · φ(x)`` with ``q`` a polynomial,
    found by applying ``q ↦ q' − q·x/σ²`` ``n`` times to ``q = 1``.

    Examples
    --------
    >>> gaussian_weights(1.0, 0, 1).round(6)
    array([0.274069, 0.451863, 0.274069])
    >>> float(gaussian_weights(1.0, 1, 3).sum())  # an odd derivative sums to 0
    0.0
    """
    if order < 0:
        raise ValueError("order must be non-negative")
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi = phi / phi.sum()
    if order == 0:
        return phi
    powers = np.arange(order + 1)
    q = np.zeros(order + 1)
    q[0] = 1.0
    derivative = np.diag(powers[1:].astype(np.float64), 1)  # q -> q'
    times_x = np.diag(np.full(order, -1 / (sigma * sigma)), -1)  # q -> -q x / σ²
    for _ in range(order):
        q = (derivative + times_x) @ q
    return (x[:, None] ** powers) @ q * phi


def gaussian(sigma, ndim: int | None = None, *, truncate: float = 4.0,
             radius=None) -> np.ndarray:
    """The sampled Gaussian that ``scipy.ndimage.gaussian_filter`` applies, summing to 1.

    Parameters
    ----------
    sigma : float or sequence of floats
        Standard deviation in pixels, one for every axis or one per axis; 0
        leaves that axis alone (a length-1 axis).
    ndim : int, optional
        Dimensions (default: ``len(sigma)`` for a sequence, else 2).
    truncate : float
        Radius in standard deviations, as scipy's: ``int(truncate * sigma + 0.5)``.
    radius : int or sequence of ints, optional
        The radius in pixels instead (scipy's ``radius=``).

    Returns
    -------
    ndarray
        float64, ``2 * radius + 1`` long on each axis; a product of 1-D Gaussians,
        each normalised as scipy's.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage as ndi, fftconv
    >>> g = fftconv.kernels.gaussian(1.5)
    >>> g.shape, round(float(g.sum()), 12)
    ((13, 13), 1.0)
    >>> x = np.random.default_rng(0).random((32, 40))
    >>> bool(np.allclose(fftconv.convolve(x, g, boundary="reflect"),
    ...                  ndi.gaussian_filter(x, 1.5), rtol=0, atol=1e-12))
    True
    """
    sigmas = _per_axis(sigma, ndim, "sigma")
    if radius is None:
        radii = [int(truncate * s + 0.5) for s in sigmas]
    else:
        radii = [int(r) for r in _per_axis(radius, len(sigmas), "radius")]
    factors = []
    for s, r in zip(sigmas, radii):
        if s == 0:
            factors.append(np.ones(1))
            continue
        factors.append(gaussian_weights(s, 0, r))
    return _outer(factors)


def disk(radius, ndim: int | None = None) -> np.ndarray:
    """The pixels within ``radius`` of the centre (``Σ (xᵢ / rᵢ)² ≤ 1``), summing to 1.

    Parameters
    ----------
    radius : float or sequence of floats
        In pixels, one for every axis or one per axis (an ellipse).
    ndim : int, optional
        Dimensions (default: ``len(radius)`` for a sequence, else 2; 3 is a ball).

    Examples
    --------
    >>> import fftconv
    >>> d = fftconv.kernels.disk(1)
    >>> (d * 5).round(12)
    array([[0., 1., 0.],
           [1., 1., 1.],
           [0., 1., 0.]])
    """
    radii = _per_axis(radius, ndim, "radius")
    if not all(r > 0 for r in radii):
        raise ValueError(f"radius={radius!r} must be > 0")
    grids = np.ogrid[tuple(slice(-math.ceil(r), math.ceil(r) + 1) for r in radii)]
    # The tolerance keeps points exactly on the rim, which rounding of (3/5)² + (4/5)² loses
    # (and of a radius converted from a unit, 0.3 µm / 0.1 µm = 2.9999999999999996).
    inside = (sum((g / r) ** 2 for g, r in zip(grids, radii)) <= 1 + 1e-12).astype(np.float64)
    return inside / inside.sum()


def ball(radius) -> np.ndarray:
    """:func:`disk` in three dimensions.

    Examples
    --------
    >>> import fftconv
    >>> fftconv.kernels.ball(2).shape
    (5, 5, 5)
    """
    return disk(radius, ndim=3)


def box(size, ndim: int | None = None) -> np.ndarray:
    """A box of ``size`` pixels per axis, every tap ``1 / prod(size)``: one value broadcast.

    The result takes no memory however large (every stride is 0) and is
    read-only; fftconv runs it by running sums, in time independent of its
    size.  ``.copy()`` gives an ordinary array.

    Examples
    --------
    >>> import fftconv
    >>> b = fftconv.kernels.box((3, 4))
    >>> b.shape, b.strides, float(b[0, 0]) * 12
    ((3, 4), (0, 0), 1.0)
    """
    sizes = _per_axis(size, ndim, "size")
    if not all(s >= 1 and s == int(s) for s in sizes):
        raise ValueError(f"size={size!r} must be whole numbers of pixels, at least 1")
    shape = tuple(int(s) for s in sizes)
    return np.broadcast_to(np.float64(1 / math.prod(shape)), shape)


def moffat(gamma: float, alpha: float = 4.765, ndim: int = 2, *,
           radius: int | None = None) -> np.ndarray:
    """A Moffat profile, the seeing-limited PSF of astronomy, summing to 1.

    ``(1 + r² / γ²)^-α`` at the pixel centres, as astropy's ``Moffat2DKernel``
    samples it (``mode="center"``); its FWHM is ``2γ √(2^(1/α) − 1)``.

    Parameters
    ----------
    gamma : float
        Core width in pixels.
    alpha : float
        Power index (4.765: Trujillo et al. 2001's fit to turbulence theory).
    ndim : int
        Dimensions.
    radius : int, optional
        Half-size in pixels (default: astropy's, a size of 4 FWHM rounded up to an
        odd number).

    Examples
    --------
    >>> import fftconv
    >>> m = fftconv.kernels.moffat(3.0, 2.5)
    >>> m.shape, int(m.argmax()) == m.size // 2, round(float(m.sum()), 12)
    ((15, 15), True, 1.0)
    """
    if not (gamma > 0 and alpha > 0):
        raise ValueError(f"gamma={gamma!r} and alpha={alpha!r} must be > 0")
    fwhm = 2 * gamma * math.sqrt(2 ** (1 / alpha) - 1)
    r = math.ceil(4 * fwhm) // 2 if radius is None else int(radius)  # astropy's odd size
    grids = np.ogrid[(slice(-r, r + 1),) * ndim]
    profile = (1 + sum(g.astype(np.float64) ** 2 for g in grids) / gamma**2) ** -alpha
    return profile / profile.sum()
