"""The core types and rules: settings, requests, shapes, boundaries, masks, non-finite data.

Nothing here imports from fftconv's other layers but :mod:`fftconv._infra`:
every layer above builds on these.

:mod:`.settings`
    the configuration (public as ``fftconv.config``): layers, parsing, scopes;
:mod:`.request`
    a call's arguments validated into a :class:`~.request.Request`;
:mod:`.shapes`, :mod:`.boundary`, :mod:`.problem`
    modes, axes and output windows; boundary extension and its transpose;
    the linear problem a method solves;
:mod:`.structure`
    separable, low-rank and box kernels found;
:mod:`.masks`, :mod:`.nonfinite`, :mod:`.lazy`
    masked arrays, NaN handling (``nan_policy``), the test for a dask array.
"""
