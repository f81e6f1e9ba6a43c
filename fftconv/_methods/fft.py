"""Full-FFT convolution: one circular convolution just long enough for the wanted window."""

from __future__ import annotations

import numpy as np

from fftconv._core.problem import LinearProblem
from fftconv._methods.transform import Transform, window_slices


def run(problem: LinearProblem, plan) -> np.ndarray:
    """Compute ``problem`` with one transform of shape ``plan.fft_shape``.

    The data sits at index 0, so output ``j`` of the full result lands at ``j``:
    the wanted window is read straight out of the circular result.
    """
    transform = Transform(plan.backend, plan.fft_shape, problem.axes, problem.is_real,
                          problem.dtype, plan.threads)
    # Peak memory is two spectra, then one spectrum and the circular result: the
    # kernel's spectrum is dropped before the inverse transform.
    spectrum = transform.forward(problem.y)
    kernel_spectrum = plan.kernel_spectrum(transform, problem.kernel)
    spectrum = transform.multiply(spectrum, kernel_spectrum)
    del kernel_spectrum
    circular = transform.inverse(spectrum)
    del spectrum
    starts = [a for a, _ in problem.windows]
    stops = [b for _, b in problem.windows]
    out = circular[window_slices(circular.ndim, problem.axes, starts, stops)]
    return np.array(np.broadcast_to(out, problem.out_shape), dtype=problem.dtype, order="C")
