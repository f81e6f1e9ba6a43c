"""Settings: defaults < file < environment < context managers < call arguments (SPEC §4)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fftconv
from fftconv._core import settings as _config


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "fftconv.toml"
    monkeypatch.setenv("FFTCONV_CONFIG", str(path))

    def write(text):
        path.write_text(text)
        return path

    return write


def test_defaults():
    s = _config.resolve()
    assert (s.backend, s.workers, s.memory_limit) == ("auto", -1, None)


def test_full_precedence(config_file, monkeypatch):
    monkeypatch.delenv("FFTCONV_PLANNER_EFFORT", raising=False)
    config_file('backend = "numpy"\nworkers = 3\nmemory_limit = "1GiB"\n'
                'planner_effort = "patient"\n')
    s = _config.resolve()
    assert (s.backend, s.workers, s.memory_limit, s.planner_effort) == (
        "numpy", 3, 2**30, "patient")
    monkeypatch.setenv("FFTCONV_WORKERS", "2")
    monkeypatch.setenv("FFTCONV_BACKEND", "scipy")
    assert (_config.resolve().workers, _config.resolve().backend) == (2, "scipy")
    with fftconv.config.set(workers=5), fftconv.set_backend("pyfftw"):
        assert (_config.resolve().workers, _config.resolve().backend) == (5, "pyfftw")
        assert _config.resolve(workers=7, backend="numpy").workers == 7
        assert _config.resolve(workers=None).workers == 5
        with fftconv.config.set(workers=1):
            assert fftconv.config.get("workers") == 1
        assert fftconv.config.get("workers") == 5
    assert _config.resolve().workers == 2
    assert _config.resolve().memory_limit == 2**30


def test_fftconv_table_in_file(config_file):
    config_file('[fftconv]\nspectrum_cache = 3\n')
    assert fftconv.config.get("spectrum_cache") == 3


@pytest.mark.parametrize("text, match", [
    ("workers = 'lots'", "workers"),
    ("memory_limit = '12 parsecs'", "memory_limit"),
    ("colour = 'blue'", "unknown setting 'colour'"),
    ("backend = [", "not valid TOML"),
    ("planner_effort = 'hard'", "planner_effort"),
])
def test_malformed_file_is_a_clear_error_on_first_use(config_file, text, match):
    path = config_file(text)
    import fftconv as again  # importing never reads the file

    assert again is fftconv
    with pytest.raises(ValueError, match=match) as info:
        fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)))
    assert str(path) in str(info.value)


def test_missing_explicit_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FFTCONV_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ValueError, match="FFTCONV_CONFIG.*no such config file"):
        _config.resolve()


def test_get_several_settings_at_once(monkeypatch):
    monkeypatch.setenv("FFTCONV_WORKERS", "3")
    with fftconv.config.set(backend="numpy"):
        assert fftconv.config.get("workers", "backend", "memory_limit") == (3, "numpy", None)
        assert fftconv.config.get("backend") == "numpy"
    with pytest.raises(ValueError, match="unknown setting 'colour'"):
        fftconv.config.get("workers", "colour")


def test_user_dirs_follow_the_environment(monkeypatch, tmp_path):
    """platformdirs' answer is cached per value of the variables it reads, never stale."""
    for name in ("one", "two", "one"):
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / name / "config"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / name / "cache"))
        assert _config.user_config_path() == tmp_path / name / "config/fftconv/config.toml"
        assert _config.user_cache_dir() == tmp_path / name / "cache/fftconv"
    (tmp_path / "two/config/fftconv").mkdir(parents=True)
    (tmp_path / "two/config/fftconv/config.toml").write_text('backend = "numpy"\n')
    assert _config.resolve().backend == "auto"  # still "one": no file there
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "two" / "config"))
    assert _config.resolve().backend == "numpy"


@pytest.mark.parametrize("var, value", [("FFTCONV_WORKERS", "x"),
                                        ("FFTCONV_MEMORY_LIMIT", "-5MB"),
                                        ("FFTCONV_PLANNER_TIME_LIMIT", "soon")])
def test_malformed_environment_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=f"environment variable {var}.*{value}"):
        fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)))


@pytest.mark.parametrize("text, size", [("512MiB", 512 * 2**20), ("2GB", 2 * 10**9),
                                        (1024, 1024), ("1.5 GiB", int(1.5 * 2**30)),
                                        ("none", None)])
def test_memory_sizes(text, size):
    assert _config.parse_bytes(text) == size


def test_negative_workers_count_back_from_all_cores(monkeypatch):
    monkeypatch.setattr(_config, "cores", lambda: 8)
    assert _config.resolve_workers(-1) == 8
    assert _config.resolve_workers(-3) == 6
    assert _config.resolve_workers(-20) == 1


def test_context_does_not_leak_between_threads():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def other():
        inside.wait()
        seen["other"] = fftconv.config.get("backend")
        release.set()

    thread = threading.Thread(target=other)
    thread.start()
    with fftconv.set_backend("numpy"):
        inside.set()
        release.wait()
        seen["mine"] = fftconv.config.get("backend")
    thread.join()
    assert seen == {"mine": "numpy", "other": "auto"}


def test_context_reaches_our_worker_threads(monkeypatch, rng):
    """Settings made with ``with`` apply inside fftconv's own thread pools."""
    backend = fftconv._registry.discovery.load_backend("pyfftw")
    efforts = set()
    original = backend._settings

    def spy():
        efforts.add(fftconv.config.get("planner_effort"))
        return original()

    monkeypatch.setattr(backend, "_settings", spy)
    with fftconv.config.set(planner_effort="estimate", memory_limit=50_000, workers=2):
        fftconv.convolve(rng.uniform(size=(80, 80)), rng.uniform(size=(9, 9)),
                         method="overlap-add", backend="pyfftw")
    assert efforts == {"estimate"}
