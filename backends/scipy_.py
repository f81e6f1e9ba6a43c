"""scipy.fft backend: pocketfft with threads and native single precision."""

from __future__ import annotations

from fftconv._protocol import CONTRACT_VERSION, Capabilities


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
        self.capabilities = Capabilities(threads=True)

    def rfftn(self, x, s, axes, workers=1):
        return self._fft.rfftn(x, s=s, axes=axes, workers=workers)

    def irfftn(self, x, s, axes, workers=1):
        return self._fft.irfftn(x, s=s, axes=axes, workers=workers, overwrite_x=False)

    def fftn(self, x, s, axes, workers=1):
        return self._fft.fftn(x, s=s, axes=axes, workers=workers)

    def ifftn(self, x, s, axes, workers=1):
        return self._fft.ifftn(x, s=s, axes=axes, workers=workers)

    def next_fast_len(self, n: int, real: bool = True) -> int:
        return self._fft.next_fast_len(n, real=real)
