"""Backend discovery through fake ``*.dist-info/entry_points.txt`` on sys.path (zarr's pattern)."""

from __future__ import annotations

import sys
import textwrap
import warnings

import numpy as np
import pytest

import fftconv
from fftconv._registry import discovery as _registry
from fftconv.testing import check_backend

GOOD = '''
import numpy as np
from fftconv._registry.protocol import CONTRACT_VERSION, Capabilities

class Backend:
    name = "{name}"
    contract_version = CONTRACT_VERSION
    requires = ()
    priority = {priority}
    version = "9.9"
    capabilities = Capabilities()
    def rfftn(self, x, s, axes, workers=1): return np.fft.rfftn(x, s=s, axes=axes)
    def irfftn(self, x, s, axes, workers=1): return np.fft.irfftn(x, s=s, axes=axes)
    def fftn(self, x, s, axes, workers=1): return np.fft.fftn(x, s=s, axes=axes)
    def ifftn(self, x, s, axes, workers=1): return np.fft.ifftn(x, s=s, axes=axes)
    def next_fast_len(self, n, real=True): return n
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Install fake distributions: ``add(dist, name, module_source, value)``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(dist, name, source, attr="Backend"):
        module = f"plugin_{dist.replace('-', '_')}_{name}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        eps = info / "entry_points.txt"
        old = eps.read_text() if eps.exists() else "[fftconv.backends]\n"
        eps.write_text(old + f"{name} = {module}:{attr}\n")
        _registry.refresh_backends()

    yield add
    for key in [k for k in sys.modules if k.startswith("plugin_")]:
        del sys.modules[key]
    _registry.refresh_backends()


def test_builtins_are_entry_points():
    names = {ep.name: ep.value for ep in _registry._entry_points().values()}
    assert names["numpy"] == "fftconv.backends.numpy_:NumpyBackend"
    assert names["scipy"] == "fftconv.backends.scipy_:ScipyBackend"
    assert names["pyfftw"] == "fftconv.backends.pyfftw_:PyFFTWBackend"


@pytest.mark.parametrize("name", ["numpy", "scipy", "pyfftw"])
def test_builtin_backends_conform(name):
    check_backend(_registry.load_backend(name))


def test_third_party_plugin_is_found_and_used(plugins, rng):
    plugins("acme-fft", "acme", GOOD.format(name="acme", priority=-5))
    assert "acme" in fftconv.available_backends()
    x, k = rng.uniform(size=(20, 20)), rng.uniform(size=(5, 5))
    np.testing.assert_allclose(fftconv.convolve(x, k, method="fft", backend="acme"),
                               fftconv.convolve(x, k, method="direct"), atol=1e-12)
    with fftconv.set_backend("acme"):
        assert fftconv.get_backend() == "acme"


def test_broken_plugin_is_skipped_in_auto_and_named_when_asked(plugins):
    plugins("bad-fft", "bad", "raise ImportError('libbad.so: cannot open shared object')\n")
    with pytest.warns(RuntimeWarning, match="'bad' is broken.*libbad.so"):
        assert fftconv.get_backend() == "scipy"
    assert "bad" not in fftconv.available_backends()
    with pytest.raises(fftconv.BackendError, match="broken.*libbad.so"):
        fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)), backend="bad")


def test_non_conforming_plugin_is_broken(plugins):
    plugins("half-fft", "half", "class Backend:\n    contract_version = 1\n"
                                "    def rfftn(self, *a): pass\n")
    with pytest.raises(fftconv.BackendError, match="non-conforming.*missing methods irfftn"):
        fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)), backend="half")


def test_future_contract_is_refused(plugins):
    plugins("new-fft", "new", GOOD.format(name="new", priority=0).replace(
        "contract_version = CONTRACT_VERSION", "contract_version = 2"))
    with pytest.raises(fftconv.BackendError, match="contract version 2"):
        fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)), backend="new")


def test_missing_dependency_is_not_installed_with_hint(plugins):
    plugins("gpu-fft", "gpu", GOOD.format(name="gpu", priority=0).replace(
        "requires = ()", "requires = ('surely_not_installed_mod',)\n"
                         "    install_hint = 'pip install gpu-fft[cuda]'"))
    info = {i.name: i for i in _registry.backend_infos()}["gpu"]
    assert info.status == "not installed" and "pip install gpu-fft[cuda]" in info.detail
    assert "surely_not_installed_mod" not in sys.modules
    with pytest.raises(fftconv.BackendError, match="not installed.*pip install gpu-fft"):
        fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)), backend="gpu")


def test_duplicate_names_resolve_deterministically(plugins):
    plugins("zzz-fft", "dup", GOOD.format(name="dup", priority=0).replace("9.9", "from-zzz"))
    plugins("aaa-fft", "dup", GOOD.format(name="dup", priority=0).replace("9.9", "from-aaa"))
    with pytest.warns(RuntimeWarning, match="registered twice"):
        _registry.refresh_backends()
        chosen = _registry.load_backend("dup")
    assert chosen.version == "from-aaa"


def test_builtin_wins_over_a_third_party_of_the_same_name(plugins):
    plugins("aaa-imposter", "numpy", GOOD.format(name="numpy", priority=0))
    with pytest.warns(RuntimeWarning, match="registered twice"):
        _registry.refresh_backends()
        chosen = _registry.load_backend("numpy")
    assert type(chosen).__module__ == "fftconv.backends.numpy_"


def test_plugin_that_fails_on_start(plugins):
    plugins("boom-fft", "boom", GOOD.format(name="boom", priority=0).replace(
        "    name = ", "    def __init__(self): raise RuntimeError('no licence')\n    name = "))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        infos = {i.name: i for i in _registry.backend_infos()}
    assert infos["boom"].status == "broken" and "no licence" in infos["boom"].detail


INTO = '''
    def rfftn_into(self, x, out, axes, workers=1):
        out[...] = np.fft.rfftn(x, axes=axes)
    def irfftn_into(self, x, out, axes, workers=1):
        out[...] = np.fft.irfftn(x, s=[out.shape[a] for a in axes], axes=axes)
    def fftn_into(self, x, out, axes, workers=1):
        out[...] = np.fft.fftn(x, axes=axes)
    def ifftn_into(self, x, out, axes, workers=1):
        out[...] = np.fft.ifftn(x, axes=axes){scale}
'''


def test_third_party_into_methods_run_the_dask_strips(plugins, rng, monkeypatch):
    """A plugin's optional ``*_into`` methods serve the Dask path as the built-ins' do."""
    pytest.importorskip("dask.array")
    import dask.array as da

    from fftconv._tiling import dask as _dask

    plugins("into-fft", "into", GOOD.format(name="into", priority=-5) + INTO.format(scale=""))
    backend = _registry.load_backend("into")
    check_backend(backend)
    strips = []
    original = _dask._convolve_by_rows
    monkeypatch.setattr(_dask, "_convolve_by_rows",
                        lambda *a, **k: strips.append(1) or original(*a, **k))
    monkeypatch.setattr(_dask, "ROW_BYTES", 256)  # several strips per tile
    x, k = rng.uniform(size=(40, 36)), rng.uniform(size=(7, 6))
    got = fftconv.convolve(da.from_array(x, chunks=(15, 20)), k, boundary="reflect",
                           method="fft", backend="into").compute(scheduler="sync")
    np.testing.assert_allclose(got, fftconv.convolve(x, k, boundary="reflect",
                                                     method="direct"), atol=1e-10)
    assert len(strips) == 6


def test_conformance_catches_a_wrong_optional_method(plugins):
    plugins("off-fft", "off", GOOD.format(name="off", priority=-5) + INTO.format(scale=" * 2"))
    with pytest.raises(AssertionError, match="ifftn_into"):
        check_backend(_registry.load_backend("off"))
