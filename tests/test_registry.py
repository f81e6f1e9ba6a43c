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
from fftconv.backends import CONTRACT_VERSION, Capabilities

def kept(x, y):  # NumPy 1.x transforms float32 in double: back to the input's precision
    single = x.dtype in (np.float32, np.complex64)
    return y.astype((np.complex64 if single else np.complex128) if y.dtype.kind == "c"
                    else (np.float32 if single else np.float64), copy=False)

class Backend:
    name = "{name}"
    contract_version = CONTRACT_VERSION
    requires = ()
    priority = {priority}
    version = "9.9"
    capabilities = Capabilities()
    def rfftn(self, x, s, axes, workers=1): return kept(x, np.fft.rfftn(x, s=s, axes=axes))
    def irfftn(self, x, s, axes, workers=1): return kept(x, np.fft.irfftn(x, s=s, axes=axes))
    def fftn(self, x, s, axes, workers=1): return kept(x, np.fft.fftn(x, s=s, axes=axes))
    def ifftn(self, x, s, axes, workers=1): return kept(x, np.fft.ifftn(x, s=s, axes=axes))
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


def test_auto_ranks_on_the_stated_priority_without_importing_the_losers(plugins):
    # A plugin that would not win is neither imported (a slow import would slow every
    # process) nor, when its import is broken, warned about.
    plugins("slow-fft", "slow", "import surely_not_installed_lib\n"
            + GOOD.format(name="slow", priority=-5))
    plugins("fast-fft", "fast", GOOD.format(name="fast", priority=99))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fftconv.get_backend() == "fast"
        assert fftconv.get_backend() == "fast"
    assert "plugin_slow_fft_slow" not in sys.modules


def test_a_plugin_that_inherits_its_priority_is_imported_to_rank_it(plugins):
    plugins("kin-fft", "kin", GOOD.format(name="kin", priority=99).replace(
        "class Backend:", "class Base:\n    priority = 99\n\nclass Backend(Base):").replace(
        "    priority = 99\n    version", "    version"))
    assert fftconv.get_backend() == "kin"


def test_a_broken_plugin_is_reported_once_per_process(plugins):
    plugins("bad-fft", "bad", "raise ImportError('libbad.so: cannot open shared object')\n")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)), method="fft")
    assert [str(w.message) for w in seen if "broken" in str(w.message)] == [
        "fftconv backend 'bad' is broken and was skipped: import failed: ImportError: "
        "libbad.so: cannot open shared object"]


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


DECLARING = GOOD.replace("capabilities = Capabilities()",
                         "capabilities = Capabilities(real_into=True, complex_into=True)")


def test_third_party_into_methods_run_the_dask_strips(plugins, rng, monkeypatch):
    """A plugin's optional ``*_into`` methods serve the Dask path as the built-ins' do."""
    pytest.importorskip("dask.array")
    import dask.array as da

    from fftconv._tiling import blocks as _blocks

    plugins("into-fft", "into", DECLARING.format(name="into", priority=-5) + INTO.format(scale=""))
    backend = _registry.load_backend("into")
    check_backend(backend)
    strips = []
    original = _blocks.convolve_by_rows
    monkeypatch.setattr(_blocks, "convolve_by_rows",
                        lambda *a, **k: strips.append(1) or original(*a, **k))
    monkeypatch.setattr(_blocks, "ROW_BYTES", 256)  # several strips per tile
    x, k = rng.uniform(size=(40, 36)), rng.uniform(size=(7, 6))
    got = fftconv.convolve(da.from_array(x, chunks=(15, 20)), k, boundary="reflect",
                           method="fft", backend="into").compute(scheduler="sync")
    np.testing.assert_allclose(got, fftconv.convolve(x, k, boundary="reflect",
                                                     method="direct"), atol=1e-10)
    assert len(strips) == 6


def test_conformance_catches_a_wrong_optional_method(plugins):
    plugins("off-fft", "off", DECLARING.format(name="off", priority=-5) + INTO.format(scale=" * 2"))
    with pytest.raises(AssertionError, match="ifftn_into"):
        check_backend(_registry.load_backend("off"))


def test_the_plugin_contract_is_public():
    """Plugin authors import the contract from ``fftconv.backends``, not a private module."""
    import fftconv.backends as fb

    from fftconv._registry import protocol

    assert fb.FFTBackend is protocol.FFTBackend and fb.Capabilities is protocol.Capabilities
    assert fb.CONTRACT_VERSION == protocol.CONTRACT_VERSION and fb.CONTRACT is protocol
    for name in ("numpy", "scipy", "pyfftw"):
        assert isinstance(_registry.load_backend(name), fb.FFTBackend)


def test_declared_optional_methods_it_lacks_make_a_plugin_broken(plugins):
    source = GOOD.replace("capabilities = Capabilities()",
                          "capabilities = Capabilities(real_into=True)")
    plugins("liar-fft", "liar", source.format(name="liar", priority=-5))
    info = {i.name: i for i in _registry.backend_infos()}["liar"]
    assert info.status == "broken" and "rfftn_into" in info.detail
    with pytest.raises(fftconv.BackendError, match="rfftn_into"):
        fftconv.convolve(np.ones(8), np.ones(3), backend="liar")


def test_undeclared_optional_methods_are_never_called(plugins, rng):
    """The Dask path asked ``hasattr`` whether a backend writes into given arrays; it reads
    the backend's declared capabilities instead."""
    da = pytest.importorskip("dask.array")
    source = GOOD + textwrap.indent(textwrap.dedent('''
        def rfftn_into(self, x, out, axes, workers=1): raise AssertionError("undeclared")
        def irfftn_into(self, x, out, axes, workers=1): raise AssertionError("undeclared")
        def fftn_into(self, x, out, axes, workers=1): raise AssertionError("undeclared")
        def ifftn_into(self, x, out, axes, workers=1): raise AssertionError("undeclared")
    '''), "    ")
    plugins("quiet-fft", "quiet", source.format(name="quiet", priority=-5))
    x, k = rng.uniform(size=(40, 40)), rng.uniform(size=(7, 7))
    got = fftconv.convolve(da.from_array(x, chunks=20), k, method="fft", backend="quiet")
    np.testing.assert_allclose(got.compute(), fftconv.convolve(x, k, method="direct"),
                               atol=1e-12)


def test_a_backend_object_is_accepted_where_a_name_is(rng):
    from fftconv.backends.numpy_ import NumpyBackend

    mine = NumpyBackend()
    x, k = rng.uniform(size=(30, 30)), rng.uniform(size=(9, 9))
    expected = fftconv.convolve(x, k, method="direct")
    np.testing.assert_allclose(fftconv.convolve(x, k, method="fft", backend=mine), expected,
                               atol=1e-12)
    assert fftconv.plan(x.shape, k.shape, method="fft", backend=mine).backend is mine
    with fftconv.config.set(backend=mine):
        assert fftconv.config.get("backend") is mine and fftconv.get_backend() == "numpy"
        np.testing.assert_allclose(fftconv.Convolver(k, method="fft")(x), expected, atol=1e-12)


def test_a_backend_object_that_breaks_the_contract_is_refused():
    class Half:
        def rfftn(self, x, s, axes, workers=1):
            return np.fft.rfftn(x, s=s, axes=axes)

    with pytest.raises(fftconv.BackendError, match="does not meet the backend contract"):
        fftconv.convolve(np.ones(8), np.ones(3), backend=Half())
    with pytest.raises(ValueError, match="not a backend name"):
        fftconv.convolve(np.ones(8), np.ones(3), backend=3)


def test_a_plan_with_an_unregistered_backend_object_pickles():
    import pickle

    from fftconv.backends.numpy_ import NumpyBackend

    plan = fftconv.plan((64, 64), (9, 9), method="fft", backend=NumpyBackend())
    assert pickle.loads(pickle.dumps(plan)).backend.name == "numpy"
