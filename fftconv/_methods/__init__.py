"""Executors: each runs one :class:`~fftconv._planning.planner.Plan` on in-memory arrays."""

from __future__ import annotations

from fftconv._methods import direct, fft, overlap

RUNNERS = {"direct": direct.run, "fft": fft.run, "overlap-add": overlap.run}
