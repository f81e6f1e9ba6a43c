"""The FFT registry: backend plugins found through entry points, and their contract.

:mod:`.protocol` is the contract a backend implements (public as
``fftconv.backends``); :mod:`.discovery` finds, ranks and loads the
registered backends; :mod:`.fastlen` gives backends their fast lengths.
"""

from fftconv._registry.discovery import (
    GROUP,
    BackendError,
    BackendInfo,
    available_backends,
    backend_infos,
    get_backend,
    load_backend,
    refresh_backends,
    registered_name,
)
from fftconv._registry.fastlen import LengthCosts, cheapest_length, next_smooth
from fftconv._registry.protocol import (
    CONTRACT_VERSION,
    REQUIRED_METHODS,
    Capabilities,
    FFTBackend,
)

__all__ = [
    "CONTRACT_VERSION", "GROUP", "REQUIRED_METHODS", "BackendError", "BackendInfo",
    "Capabilities", "FFTBackend", "LengthCosts", "available_backends", "backend_infos",
    "cheapest_length", "get_backend", "load_backend", "next_smooth", "refresh_backends",
    "registered_name",
]
