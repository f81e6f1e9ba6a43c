"""Convolver: one kernel, many images — plan and kernel spectrum paid once per shape."""

from __future__ import annotations

import dataclasses

import numpy as np

from fftconv import _tiling
from fftconv._core import settings as _config
from fftconv._core.lazy import is_dask_array, is_dataarray, unwrap_lazy
from fftconv._core.masks import remask, unmask
from fftconv._core.request import (
    METHOD_NAMES,
    NAN_POLICIES,
    Request,
    as_array,
    at_dtype,
    build_request,
)
from fftconv._core.shapes import BOUNDARIES, MODES, check_choice, stand_in
from fftconv._infra.cache import Cache
from fftconv._methods.spectra import SpectrumCache
from fftconv._ops import labelled
from fftconv._planning import Routes, plan_request, run_request
from fftconv._registry import registered_name


class Convolver:
    """A kernel bound to its settings, applied to many images.

    Calling it on images of one shape and dtype reuses the plan and the
    kernel's spectrum (a stack of frames, or a deconvolution iterating with one
    PSF, pays the kernel transform once), so a call on a small image costs
    little more than its arithmetic.  Backend, method and threads are fixed when the
    Convolver is made, so every call (and every Dask task) computes the same thing.

    Parameters
    ----------
    kernel : array_like
        Copied here; a dask array is computed here, once, so calls return what
        :func:`fftconv.convolve` returns for the image alone (an ndarray for an
        ndarray, a lazy array for a dask array).
    mode, boundary, cval, axes, method, backend, workers, nan_policy, dtype
        As in :func:`fftconv.convolve`.
    correlate : bool
        Correlate instead of convolve.
    max_spectra : int
        Kernel spectra kept (one per image shape / transform seen).

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> blur = fftconv.Convolver(np.ones((5, 5)) / 25, boundary="reflect")
    >>> frames = np.random.default_rng(0).random((3, 64, 64))
    >>> out = [blur(frame) for frame in frames]
    >>> bool(np.allclose(out[1], fftconv.convolve(frames[1], np.ones((5, 5)) / 25,
    ...                                           boundary="reflect")))
    True
    """

    def __init__(self, kernel, *, mode="same", boundary="constant", cval=0.0, axes=None,
                 method="auto", backend=None, workers=None, nan_policy="propagate",
                 dtype=None, correlate=False, max_spectra=4) -> None:
        # A private, read-only copy: changing the caller's array later changes nothing here.
        self.kernel = np.array(as_array(kernel, "kernel"), copy=True)
        self.kernel.flags.writeable = False
        self.options = dict(mode=mode, boundary=boundary, cval=cval, axes=axes,
                            method=method, nan_policy=nan_policy, dtype=dtype)
        self.correlate = correlate
        self.settings = _config.resolve(backend=backend, workers=workers)
        self._start_caches(max_spectra)
        # Validate every argument now, against a stand-in image shaped like the kernel.
        if axes is None:
            self._request(stand_in("image", self.kernel))
        else:
            for name, allowed in (("mode", MODES), ("boundary", BOUNDARIES),
                                  ("method", METHOD_NAMES), ("nan_policy", NAN_POLICIES)):
                check_choice(name, self.options[name], allowed)

    def _start_caches(self, max_spectra: int) -> None:
        self._spectra = SpectrumCache(entries=max_spectra, max_bytes=None)
        self._routes = Routes(self.settings, self._spectra)
        self._templates = Cache("Convolver requests", entries=self._routes.entries)

    def __getstate__(self) -> dict:
        # The caches (and their locks) stay here: a copy in another process, such as a
        # Dask worker's, plans and transforms anew with the same kernel and settings.
        # A registered backend object travels by its name (pyFFTW's holds a module).
        settings = dataclasses.replace(self.settings,
                                       backend=registered_name(self.settings.backend))
        return {"kernel": self.kernel, "options": self.options, "correlate": self.correlate,
                "settings": settings, "max_spectra": self._spectra.entries}

    def __setstate__(self, state: dict) -> None:
        self.kernel = state["kernel"]
        self.kernel.flags.writeable = False
        self.options, self.correlate = state["options"], state["correlate"]
        self.settings = state["settings"]
        self._start_caches(state["max_spectra"])

    def _request(self, image):
        o = self.options
        return build_request(image, self.kernel, o["mode"], o["boundary"], o["cval"],
                             o["axes"], o["method"], o["nan_policy"], o["dtype"],
                             flip=self.correlate)

    def _request_for(self, image: np.ndarray) -> Request:
        """``_request(image)``, validated and laid out once per image shape and dtype."""
        image = as_array(image, "image")
        key = (image.shape, image.dtype.str)
        template = self._templates.get(key)
        if template is None:
            template = self._request(stand_in("image", image.shape, image.dtype))
            self._templates.put(key, template)
        return template.replace(image=at_dtype(image, template.dtype))

    def __call__(self, image):
        """Convolve ``image`` (ndarray, dask array or xarray DataArray) with the bound kernel.

        A masked image's masked pixels are missing values, as in
        :func:`fftconv.convolve`.  The plan for each image shape and dtype is
        made on the first call and kept.
        """
        if is_dataarray(image):
            return labelled.apply(image, None, self.options["axes"],
                                  lambda data, _, found: self(data))
        image, masked = unmask(unwrap_lazy(image))
        if is_dask_array(image):
            out = _tiling.apply_convolver(self, image)
        else:
            out = run_request(self._request_for(image), self.settings, self._spectra,
                              finite=self._routes)
        return remask(out) if masked else out

    def plan(self, image_shape, dtype=None):
        """The plan for images of this shape, or of this image (see :func:`fftconv.plan`)."""
        return plan_request(self._request(stand_in("image_shape", image_shape, dtype)),
                            self.settings)

    def __repr__(self) -> str:
        kind = "correlate" if self.correlate else "convolve"
        return (f"Convolver({kind}, kernel {self.kernel.shape} {self.kernel.dtype}, "
                f"{self.options['mode']!r}, boundary={self.options['boundary']!r}, "
                f"backend={self.settings.backend!r})")
