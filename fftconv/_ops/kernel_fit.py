"""What the in-memory and the lazy kernel estimate share: the fit's record and its checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fftconv._ops.transposes import Transposes


@dataclasses.dataclass(frozen=True)
class KernelFit:
    """How well the estimated kernel explains the output (``full_output=True``).

    Examples
    --------
    >>> import numpy as np, fftconv
    >>> rng = np.random.default_rng(0)
    >>> image, kernel = rng.random((64, 64)), rng.random((5, 5))
    >>> output = fftconv.convolve(image, kernel)
    >>> k, fit = fftconv.estimate_kernel(image, output, (5, 5), full_output=True)
    >>> bool(np.allclose(k, kernel)), fit.converged, fit.relative_residual < 1e-9
    (True, True, True)
    """

    residual: float  # ‖(conv(image, k) − output)[mask]‖
    relative_residual: float  # residual / ‖output[mask]‖
    iterations: int
    converged: bool


def transposes(image, out_shape, kernel_shape, mode: str, boundary: str,
               regularization: float) -> Transposes:
    """The forward call's transposes, after checking the shapes and the regularization.

    ``image`` may be a zero-stride stand-in: only the in-memory solve reads it.
    """
    shape = tuple(int(n) for n in kernel_shape)
    if len(shape) != image.ndim or min(shape) < 1:
        raise ValueError(f"kernel_shape={shape} needs {image.ndim} positive lengths")
    if regularization < 0:
        raise ValueError(f"regularization={regularization} must be >= 0")
    ops = Transposes(image, np.zeros(shape), mode, boundary, None, flip=False)
    if tuple(out_shape) != ops.out_shape:
        raise ValueError(f"output has shape {tuple(out_shape)}; mode={mode!r} gives "
                         f"{ops.out_shape}")
    return ops


def check_mask(shape, out_shape) -> None:
    if tuple(shape) != tuple(out_shape):
        raise ValueError(f"mask has shape {tuple(shape)}; the output has {tuple(out_shape)}")


def default_maxiter(kernel_shape) -> int:
    return max(50, 2 * math.prod(kernel_shape))


def reported(callback, iteration: int, k: np.ndarray, gamma: float, gamma0: float) -> bool:
    """Tell ``callback`` of an iteration; False when it asks to stop (StopIteration)."""
    if callback is None:
        return True
    try:
        callback(iteration, k.copy(), math.sqrt(gamma / gamma0))
    except StopIteration:
        return False
    return True
