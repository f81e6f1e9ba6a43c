"""scipy.fft backend: pocketfft with threads and native single precision."""

from __future__ import annotations

from fftconv.backends import CONTRACT_VERSION, Capabilities


def _pocketfft_with_out():
    """scipy's pocketfft binding when it writes into given arrays, else None.

    ``scipy.fft`` itself has no ``out=``; its binding does (``r2c``, ``c2c``,
    ``c2r`` with ``out``, documented in their docstrings).  It is not public
    API, so it is checked on a tiny transform before it is trusted.
    """
    import numpy as np

    try:
        from scipy.fft._pocketfft import pypocketfft
    except ImportError:
        return None
    probe = np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)
    spectrum = np.empty((2, 2), dtype=np.complex64)
    back = np.empty((2, 2), dtype=np.float32)
    try:
        pypocketfft.r2c(probe, (0, 1), True, 0, spectrum, 1)
        pypocketfft.c2c(spectrum, (0,), False, 2, spectrum, 1)
        pypocketfft.c2r(spectrum, (1,), 2, False, 2, back, 1)
    except (AttributeError, TypeError, ValueError):
        return None
    return pypocketfft if np.allclose(back, probe) else None


class ScipyBackend:
    """FFTs through :mod:`scipy.fft`; ``workers`` threads per transform."""

    name = "scipy"
    contract_version = CONTRACT_VERSION
    requires = ("scipy",)
    install_hint = "pip install 'fftconv[scipy]'"
    priority = 20

    def __init__(self) -> None:
        import scipy
        import scipy.fft

        self._fft = scipy.fft
        self.version = scipy.__version__
        self._pocketfft = _pocketfft_with_out()
        works = self._pocketfft is not None
        self.capabilities = Capabilities(threads=True, real_into=works, complex_into=works)
        if works:  # the optional methods exist only when they work
            self.rfftn_into = self._rfftn_into
            self.irfftn_into = self._irfftn_into
            self.fftn_into = self._fftn_into
            self.ifftn_into = self._ifftn_into

    def rfftn(self, x, s, axes, workers=1):
        return self._fft.rfftn(x, s=s, axes=axes, workers=workers)

    def irfftn(self, x, s, axes, workers=1):
        return self._fft.irfftn(x, s=s, axes=axes, workers=workers, overwrite_x=False)

    def fftn(self, x, s, axes, workers=1):
        return self._fft.fftn(x, s=s, axes=axes, workers=workers)

    def ifftn(self, x, s, axes, workers=1):
        return self._fft.ifftn(x, s=s, axes=axes, workers=workers)

    def _rfftn_into(self, x, out, axes, workers=1):
        return self._pocketfft.r2c(x, tuple(axes), True, 0, out, workers)

    def _irfftn_into(self, x, out, axes, workers=1):
        # What scipy's irfftn does, minus its temporary: the complex passes in place over
        # all but the last axis, then the real pass into ``out``; each pass scales by
        # 1/n of its own axes (inorm=2), together 1/N.
        *leading, last = axes
        if leading:
            self._ifftn_into(x, x, leading, workers)
        return self._pocketfft.c2r(x, (last,), out.shape[last], False, 2, out, workers)

    def _fftn_into(self, x, out, axes, workers=1):
        return self._pocketfft.c2c(x, tuple(axes), True, 0, out, workers)

    def _ifftn_into(self, x, out, axes, workers=1):
        return self._pocketfft.c2c(x, tuple(axes), False, 2, out, workers)

    def next_fast_len(self, n: int, real: bool = True) -> int:
        return self._fft.next_fast_len(n, real=real)
