"""Kernels by name, each summing to 1: what ``scipy.ndimage``'s filters apply, and more.

======================  ==========================================================
:func:`gaussian`        ``scipy.ndimage.gaussian_filter``'s kernel (per-axis sigma)
:func:`disk`            the pixels within a radius (an ellipse, per-axis radii)
:func:`ball`            a disk in three dimensions
:func:`box`             ``scipy.ndimage.uniform_filter``'s, as one broadcast value
:func:`moffat`          astronomy's seeing-limited PSF, as astropy's ``Moffat2DKernel``
======================  ==========================================================

The command line's ``gaussian:sigma=``, ``disk:radius=`` and ``box:size=`` are
these.

Examples
--------
>>> import numpy as np, fftconv
>>> from fftconv import kernels
>>> x = np.random.default_rng(0).random((64, 64))
>>> blurred = fftconv.convolve(x, kernels.gaussian(2.0), boundary="reflect")
"""

from fftconv._core.kernels import ball, box, disk, gaussian, moffat

__all__ = ["ball", "box", "disk", "gaussian", "moffat"]
