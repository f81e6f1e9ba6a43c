"""Executors: each runs one :class:`~fftconv._planning.planner.Plan` on in-memory arrays.

:mod:`.direct` (OpenCV or NumPy), :mod:`.fft` (one transform of the padded
shape) and :mod:`.overlap` (overlap-add blocks) are the general methods,
named once in :data:`fftconv._core.request.GENERAL_METHODS` and run through
:data:`RUNNERS`; :mod:`.structured` runs a structured kernel's passes and
:mod:`.box` window sums.  :mod:`.transform` wraps a backend's transforms and
:mod:`.spectra` keeps kernel spectra.  Methods know nothing of planning.
"""

from __future__ import annotations

from fftconv._methods import direct, fft, overlap

RUNNERS = {"direct": direct.run, "fft": fft.run, "overlap-add": overlap.run}
