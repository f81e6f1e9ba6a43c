"""The FFT backend plugins, and the contract a plugin implements.

fftconv's own backends (``numpy_``, ``scipy_``, ``pyfftw_``) live here and are
registered through the ``fftconv.backends`` entry-point group exactly as a
third party's are: nothing in fftconv imports them directly.

A plugin author needs only the names below:

:class:`FFTBackend`
    the protocol an instance meets (its module docstring,
    ``fftconv.backends.CONTRACT``, spells the contract out);
:class:`Capabilities`
    what a backend declares: native dtypes, threads, and the optional
    ``*_into`` pairs;
:data:`CONTRACT_VERSION`, :data:`REQUIRED_METHODS`
    the version a backend states and the methods it must have;
:func:`next_smooth`, :class:`LengthCosts`, :func:`cheapest_length`
    fast transform lengths (for ``next_fast_len``);
:class:`Cache`
    a bounded, thread- and fork-safe cache that ``fftconv.clear_caches()``
    empties (for plans and the like);
:func:`write_atomically`
    a file written whole or not at all (wisdom, say), nothing left on failure.

:func:`fftconv.testing.check_backend` checks a backend against the contract.

Examples
--------
>>> import fftconv.backends as fb
>>> fb.CONTRACT_VERSION, sorted(fb.REQUIRED_METHODS)[:2]
(1, ['fftn', 'ifftn'])
>>> fb.Capabilities(threads=True, real_into=True).declared_methods()
('rfftn_into', 'irfftn_into')
"""

from fftconv._infra.cache import Cache
from fftconv._infra.files import write_atomically
from fftconv._registry import protocol as CONTRACT
from fftconv._registry.fastlen import LengthCosts, cheapest_length, next_smooth
from fftconv._registry.protocol import (
    CONTRACT_VERSION,
    REQUIRED_METHODS,
    Capabilities,
    FFTBackend,
)

__all__ = [
    "CONTRACT",
    "CONTRACT_VERSION",
    "REQUIRED_METHODS",
    "Cache",
    "Capabilities",
    "FFTBackend",
    "LengthCosts",
    "cheapest_length",
    "next_smooth",
    "write_atomically",
]
