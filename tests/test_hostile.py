"""Hostile settings, damaged cache files, failing disks, odd machines: a clear error or a
correct result, never a traceback from deep inside and never a file left behind.

Each test reproduces a report of the reliability issue and failed before its fix.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import fftconv
from fftconv._core import settings as _config
from fftconv._planning import rates as _rates

X = np.ones((16, 16), np.float32)
K = np.ones((3, 3), np.float32)


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "fftconv.toml"
    path.write_text("")
    monkeypatch.setenv("FFTCONV_CONFIG", str(path))
    return path


# -- settings ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e400", "inf", "nan"])
def test_an_infinite_memory_limit_is_a_clear_error(monkeypatch, config_file, value):
    """``FFTCONV_MEMORY_LIMIT=1e400`` ended in OverflowError, in the environment, the file
    and ``config.set`` alike."""
    monkeypatch.setenv("FFTCONV_MEMORY_LIMIT", value)
    with pytest.raises(ValueError, match="FFTCONV_MEMORY_LIMIT.*not a"):
        fftconv.convolve(X, K)
    monkeypatch.delenv("FFTCONV_MEMORY_LIMIT")
    config_file.write_text(f"memory_limit = {value}\n")
    with pytest.raises(ValueError, match="memory_limit"):
        fftconv.convolve(X, K)
    config_file.write_text("")
    with pytest.raises(ValueError, match="memory_limit"):
        fftconv.config.set(memory_limit=float(value))


@pytest.mark.parametrize("text", ["fftconv = 3\n", "[[fftconv]]\nworkers = 2\n"])
def test_a_config_file_whose_fftconv_is_no_table_is_a_clear_error(config_file, text):
    config_file.write_text(text)
    with pytest.raises(ValueError, match=r"'fftconv' must be a table"):
        fftconv.convolve(X, K)


@pytest.mark.parametrize("key, value, match", [
    ("planner_time_limit", float("nan"), "finite"),
    ("planner_time_limit", float("inf"), "finite"),
    ("spectrum_cache", 2.7, "not a count"),
])
def test_values_that_were_accepted_or_truncated_are_refused(key, value, match):
    with pytest.raises(ValueError, match=match):
        fftconv.config.set(**{key: value})


def test_keys_beside_the_fftconv_table_are_reported(config_file):
    config_file.write_text("workers = 1\n[fftconv]\nbackend = 'numpy'\n")
    _config._file_cache.clear()
    with pytest.warns(_config.SettingsWarning, match=r"top-level keys \['workers'\]"):
        assert _config.resolve().backend == "numpy"


def test_an_unknown_setting_suggests_the_nearest(config_file):
    config_file.write_text("[fftconv]\nworker = 2\n")
    with pytest.raises(ValueError, match="did you mean 'workers'"):
        fftconv.convolve(X, K)
    with pytest.raises(ValueError, match="did you mean 'spectrum_cache'"):
        fftconv.config.set(spectrum_cach=2)


def test_a_misspelt_environment_variable_is_reported_once(monkeypatch):
    monkeypatch.setenv("FFTCONV_WORKER", "2")
    monkeypatch.setattr(_config, "_ENV_CHECKED", [])
    with pytest.warns(_config.SettingsWarning, match="FFTCONV_WORKER.*did you mean 'workers'"):
        _config.resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _config.resolve()  # once per process


def test_workers_zero_is_refused_on_every_path():
    """0 threads was 1 on the Dask path and the command line, ValueError in memory."""
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="not a thread count"):
        fftconv.convolve(X, K, workers=0)
    with pytest.raises(ValueError, match="not a thread count"):
        fftconv.convolve(da.from_array(X, chunks=8), K, workers=0)


# -- the CPUs this process may use --------------------------------------------------------

def test_the_thread_default_follows_the_affinity_mask(monkeypatch):
    """Under ``taskset -c 0`` fftconv ran 2 threads on 1 CPU (it counted os.cpu_count())."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(_config, "cgroup_cpu_quota", lambda: None)
    _config.cores.cache_clear()
    try:
        assert _config.cores() == 1 and _config.resolve().threads() == 1
    finally:
        _config.cores.cache_clear()


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.cfs_quota_us": "50000\n", "cpu.cfs_period_us": "100000\n"}, 1),
    ({"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_a_cgroup_quota_caps_the_cores(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    paths = (str(tmp_path / "cpu.max"), str(tmp_path / "cpu.cfs_quota_us"))
    assert _config.cgroup_cpu_quota(paths) == expected


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset")
def test_plan_says_one_thread_under_taskset():
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "fftconv.cli", "plan",
                          "--image", "256x256", "--kernel", "31x31"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "threads: 1" in out.stdout


# -- damaged cache files ---------------------------------------------------------------------

@pytest.mark.parametrize("record", [
    [1, 2], 3, "text", None,
    {"format": 1, "entries": {"scipy|<f8|x": {"fft": 1e-9}}},
    {"format": 1, "entries": {"scipy|float|2": {"fft": 1e-9}}},
    {"format": 1, "entries": {"scipy|<f8": {"fft": 1e-9}}},
    {"format": 1, "entries": {"scipy|<f8|2": [1]}},
])
def test_a_damaged_calibration_file_is_reported_once_and_ignored(tmp_path, monkeypatch, record):
    """``[1,2]`` broke every convolution with AttributeError; a key like ``scipy|<f8|x``
    broke every float64 call with ValueError, for ever."""
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(record))
    monkeypatch.setattr(_rates, "calibration_path", lambda: path)
    _rates._loaded.clear()
    x = np.ones((16, 16))
    with pytest.warns(_rates.CalibrationWarning, match="unusable"):
        first = fftconv.convolve(x, np.ones((3, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(fftconv.convolve(x, np.ones((3, 3))), first)
    assert _rates.rates_for("scipy", np.float64, 2) == _rates.Rates()


def _failing_replace(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_calibration_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", _failing_replace)
    with pytest.raises(OSError, match="No space left"):
        _rates.save({}, tmp_path / "calibration.json")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def pyfftw_backend():
    pytest.importorskip("pyfftw")
    from fftconv._registry import load_backend

    return load_backend("pyfftw")


@pytest.mark.parametrize("record", [[1, 2, 3], 7, "wisdom",
                                    "STAMP_TWO", "STAMP_STRINGS"])
def test_a_damaged_wisdom_file_is_reported_and_ignored(tmp_path, pyfftw_backend, record):
    """A wisdom file that is a JSON list or number, or whose ``wisdom`` is not three
    strings, raised AttributeError/IndexError on every pyFFTW call."""
    import pyfftw
    from fftconv.backends import pyfftw_

    stamp = pyfftw_._wisdom_stamp(pyfftw)
    if record == "STAMP_TWO":
        record = dict(stamp, wisdom=["a", "b"])
    elif record == "STAMP_STRINGS":
        record = dict(stamp, wisdom=[1, 2, 3])
    path = tmp_path / "wisdom.json"
    path.write_text(json.dumps(record))
    with pytest.warns(pyfftw_.WisdomWarning):
        assert pyfftw_.load_wisdom(pyfftw, path) is False
    with fftconv.config.set(wisdom_path=str(path), planner_effort="estimate"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", pyfftw_.WisdomWarning)  # reported once, then used
        out = fftconv.convolve(np.ones((32, 32)), np.ones((9, 9)), method="fft",
                               backend="pyfftw")
    assert out.shape == (32, 32)


def test_a_failed_wisdom_save_leaves_no_temporary_file(tmp_path, monkeypatch, pyfftw_backend):
    import pyfftw
    from fftconv.backends import pyfftw_

    monkeypatch.setattr(os, "replace", _failing_replace)
    with pytest.warns(pyfftw_.WisdomWarning, match="could not be saved"):
        pyfftw_.save_wisdom(pyfftw, tmp_path / "wisdom.json")
    assert list(tmp_path.iterdir()) == []


# -- plugins that end the process --------------------------------------------------------------

@pytest.mark.parametrize("raise_", ["raise SystemExit(3)",
                                    "class Stop(BaseException): pass\nraise Stop('no')",
                                    "class Stop(KeyboardInterrupt): pass\nraise Stop('no')"])
def test_a_plugin_that_exits_while_loading_is_a_broken_plugin(tmp_path, raise_):
    """A plugin raising SystemExit while it loaded ended ``fftconv backends`` with exit 3
    and no message."""
    (tmp_path / "plugin_quitter.py").write_text(raise_ + "\n")
    info = tmp_path / "quitter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: quitter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fftconv.backends]\nquitter = plugin_quitter:B\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    out = subprocess.run([sys.executable, "-m", "fftconv.cli", "backends"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "quitter" in out.stdout and "broken" in out.stdout
    script = textwrap.dedent("""
        import warnings, numpy as np, fftconv
        warnings.simplefilter("ignore")
        print(fftconv.convolve(np.ones(4), np.ones(3)).sum())
    """)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "10.0", out.stderr


# -- planning huge shapes ------------------------------------------------------------------------

def test_planning_huge_shapes_allocates_nothing():
    """``fftconv plan --image 1000000x1000000 --kernel 100000x100000`` allocated 9 GiB (a
    mask of the kernel's stand-in) and died."""
    script = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        import fftconv
        print(fftconv.plan((10**6, 10**6), (10**5, 10**5)).method)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("fft", "overlap-add")


# -- what write_image cannot store ---------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".tif", ".npy", ".zarr"])
@pytest.mark.parametrize("array, error, match", [
    (np.float32(3), ValueError, "at least one dimension"),
    (np.array([1, "a"], dtype=object), TypeError, "cannot store dtype object"),
])
def test_write_image_refuses_what_no_format_stores(tmp_path, suffix, array, error, match):
    with pytest.raises(error, match=match):
        fftconv.write_image(array, tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_a_boolean_tiff_is_refused_with_a_hint(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store dtype bool.*astype\(np.uint8\)"):
        fftconv.write_image(np.ones((4, 4), bool), tmp_path / "mask.tif")
    fftconv.write_image(np.ones((4, 4), bool), tmp_path / "mask.npy")
    assert fftconv.open_image(tmp_path / "mask.npy").dtype == bool


# -- a full disk ------------------------------------------------------------------------------

def _full_disk(fd, offset, length):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_a_full_disk_is_an_error_before_anything_is_written(tmp_path, monkeypatch, suffix):
    """``.npy`` and ``.tif`` outputs are written through a memory map of a sparse temporary
    file: on a full disk the first write to a page was a SIGBUS (exit 135, no message) that
    left the temporary file, the output's size, beside the target."""
    monkeypatch.setattr(os, "posix_fallocate", _full_disk)
    with pytest.raises(OSError, match="no room for the output"):
        fftconv.write_image(np.ones((64, 64), np.float32), tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_on_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    from fftconv import cli

    np.save(tmp_path / "in.npy", np.ones((64, 64), np.float32))
    np.save(tmp_path / "k.npy", np.ones((3, 3), np.float32) / 9)
    monkeypatch.setattr(os, "posix_fallocate", _full_disk)
    code = cli.main(["convolve", str(tmp_path / "in.npy"), str(tmp_path / "k.npy"),
                     str(tmp_path / "out.npy")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "k.npy"]


# -- the move into place ----------------------------------------------------------------------

def _old_output(path):
    fftconv.write_image(np.zeros((8, 8), np.float32), path)


def _content(path):
    return np.asarray(fftconv.open_image(path))


@pytest.mark.parametrize("suffix", [".npy", ".zarr"])
def test_an_output_that_appears_while_writing_is_never_replaced(tmp_path, suffix):
    """Two runs to one output both succeeded, the later silently replacing the first: the
    no-overwrite check was made only at the start."""
    da = pytest.importorskip("dask.array")
    target = tmp_path / f"out{suffix}"

    def other_run_writes(block):
        if block.shape == (8, 8) and not os.path.lexists(target):  # not dask's meta probe
            _old_output(target)
        return block

    lazy = da.ones((8, 8), chunks=8, dtype=np.float32).map_blocks(
        other_run_writes, meta=np.empty((0, 0), np.float32))
    with pytest.raises(FileExistsError, match="appeared while this run wrote it"):
        fftconv.write_image(lazy, target)
    np.testing.assert_array_equal(_content(target), 0)  # the other run's, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_dangling_link_at_the_output_is_not_replaced(tmp_path):
    link = tmp_path / "out.npy"
    link.symlink_to(tmp_path / "nowhere.npy")
    with pytest.raises(FileExistsError):
        fftconv.write_image(np.ones((4, 4), np.float32), link)
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


@pytest.mark.parametrize("suffix", [".npy", ".zarr"])
def test_overwrite_replaces_a_link_not_what_it_points_to(tmp_path, suffix):
    """``--overwrite`` onto a symlink to a directory wrote the output, then failed on
    ``rmtree`` of the link (exit 2, a ``.X.old-PID`` link left beside)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _old_output(elsewhere / f"kept{suffix}")
    link = tmp_path / f"out{suffix}"
    link.symlink_to(elsewhere, target_is_directory=True)
    fftconv.write_image(np.ones((4, 4), np.float32), link, overwrite=True)
    assert not link.is_symlink()
    np.testing.assert_array_equal(_content(link), 1)
    np.testing.assert_array_equal(_content(elsewhere / f"kept{suffix}"), 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", f"out{suffix}"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
@pytest.mark.parametrize("suffix", [".npy", ".zarr"])
def test_a_signal_at_every_step_of_the_swap_leaves_old_or_new(tmp_path, monkeypatch,
                                                               suffix, exchange):
    """A signal between the two renames of ``--overwrite`` deleted the new output and left
    the old one only at ``.out.npy.old-PID``.  Now, interrupted at any rename, the target is
    the old output or the complete new one, and nothing is left beside it."""
    from fftconv._infra import files

    if not exchange:
        monkeypatch.setattr(files, "_renameat2", lambda *a: False)
    real = os.replace
    for step in range(1, 5):
        target = tmp_path / f"out{step}{suffix}"
        _old_output(target)
        calls = []

        def interrupted(src, dst, step=step, calls=calls, target=target):
            if target in (Path(src), Path(dst)):  # the swap's renames, not zarr's own writes
                calls.append(src)
                if len(calls) == step:
                    raise KeyboardInterrupt
            return real(src, dst)

        monkeypatch.setattr(os, "replace", interrupted)
        try:
            fftconv.write_image(np.ones((8, 8), np.float32), target, overwrite=True)
            finished = True
        except KeyboardInterrupt:
            finished = False
        monkeypatch.setattr(os, "replace", real)
        values = np.unique(_content(target))
        assert values.tolist() in ([0.0], [1.0]), values
        if finished:
            assert values.tolist() == [1.0]
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# -- damaged input files -------------------------------------------------------------------------

def _damage(path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at:at + 100] = b"x" * 100
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["zarr", "tif"])
def test_a_damaged_input_is_one_line_naming_the_file_and_where(tmp_path, capsys, kind):
    """A damaged zarr chunk ended in a raw ``RuntimeError`` traceback (exit 1); a damaged
    TIFF tile in tifffile's traceback."""
    from fftconv import cli

    x = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    if kind == "zarr":
        source = tmp_path / "in.zarr"
        fftconv.write_image(x, source)
        chunk = next(p for p in source.rglob("*") if p.is_file() and p.name != "zarr.json")
        _damage(chunk, 40)
        where = "chunk 'c/0/0'"
    else:
        tifffile = pytest.importorskip("tifffile")
        source = tmp_path / "in.tif"
        tifffile.imwrite(source, x, tile=(64, 64), compression="zlib")
        _damage(source, 3000)
        where = "the tiles of"
    np.save(tmp_path / "k.npy", np.ones((5, 5), np.float32) / 25)
    code = cli.main(["convolve", str(source), str(tmp_path / "k.npy"), str(tmp_path / "o.npy")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(source) in err and where in err and "damaged" in err
    assert not (tmp_path / "o.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, "k.npy"])


# -- named kernels too large to build ------------------------------------------------------------

@pytest.mark.parametrize("spec", ["disk:radius=1e9", "gaussian:sigma=1e7", "disk:radius=30000"])
def test_a_named_kernel_too_large_to_build_is_refused_in_one_line(tmp_path, spec):
    """These were built before any size check: MemoryError tracebacks, or the process
    killed.  Under a 3 GiB address-space cap each is now one line and exit 2."""
    np.save(tmp_path / "in.npy", np.ones((128, 128), np.float32))
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        from fftconv import cli
        sys.exit(cli.main(["convolve", {str(tmp_path / "in.npy")!r}, {spec!r},
                           {str(tmp_path / "out.npy")!r}]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "give a smaller" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


@pytest.mark.parametrize("boundary", ["constant", "reflect"])
def test_a_box_far_larger_than_the_image_runs_in_little_memory(tmp_path, boundary):
    """``box:size=20000`` on a 128² image built a 20000² kernel first (2.98 GiB: a
    MemoryError under a 3 GiB cap), then the image's extension by the boundary rule."""
    image = np.random.default_rng(0).uniform(size=(128, 128)).astype(np.float32)
    np.save(tmp_path / "in.npy", image)
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        from fftconv import cli
        sys.exit(cli.main(["convolve", {str(tmp_path / "in.npy")!r}, "box:size=20000",
                           {str(tmp_path / "out.npy")!r}, "--boundary", {boundary!r}]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    got = np.load(tmp_path / "out.npy")
    if boundary == "constant":  # every window holds the whole image
        np.testing.assert_allclose(got, image.sum(dtype=np.float64) / 20000**2, rtol=1e-5)
    else:  # 20000 = 156 periods of 128 and 32 samples, along each axis
        assert got.shape == (128, 128) and 0.4 < got.mean() < 0.6


def test_a_named_kernel_knows_its_shape_before_it_is_built():
    from fftconv._io.kernel_spec import parse_kernel

    for spec in ("gaussian:sigma=1.5", "disk:radius=2.5,4", "box:size=3,5"):
        found = parse_kernel(spec)
        assert found.shape() == found.array().shape


def test_the_command_line_without_dask_names_the_extra_to_install(tmp_path):
    """Without dask installed the command line ended in ModuleNotFoundError's traceback."""
    np.save(tmp_path / "in.npy", np.ones((16, 16), np.float32))
    script = textwrap.dedent(f"""
        import sys

        class NoDask:  # as if dask were not installed
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in ("dask", "distributed"):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoDask())
        from fftconv import cli
        sys.exit(cli.main(["convolve", {str(tmp_path / "in.npy")!r}, "box:size=3",
                           {str(tmp_path / "out.npy")!r}]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "fftconv: error: this needs dask, which is not installed: pip install 'fftconv[dask]'"]


# -- a task failing under dask.distributed -------------------------------------------------------

def test_a_failed_task_under_distributed_leaves_no_temporary_output(tmp_path):
    """write_image removed its temporary output when the first task failed, while the
    workers' other tasks still ran: they made ``.out.zarr.XXXX/...`` again (3 runs of 3;
    with ``_put_local`` patched to defer to zarr's store, this test fails the same way)."""
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    import time

    def fail_first(block, block_info=None):
        if block_info[0]["chunk-location"] == (0, 0):
            raise RuntimeError("a task failed")
        time.sleep(0.4)  # the others still run when the first fails
        return block

    lazy = da.ones((64, 64), chunks=16, dtype=np.float32).map_blocks(
        fail_first, meta=np.empty((0, 0), np.float32))
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=4,
                            dashboard_address=None) as client:
        with pytest.raises(RuntimeError, match="a task failed"):
            fftconv.write_image(lazy, tmp_path / "out.zarr")
        time.sleep(1.5)  # every task that was running has finished
        client.cancel(list(client.futures))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("scheduler", ["threads", "distributed"])
def test_writes_through_zarr_still_running_after_a_failure_make_nothing_again(tmp_path,
                                                                            scheduler):
    """A big-endian output is written through zarr's own store, which creates the folders
    a chunk needs: the tasks still running when the first failed made the removed
    ``.out.zarr.XXXX/`` again, under the threaded scheduler as under a cluster."""
    da = pytest.importorskip("dask.array")
    import contextlib
    import time

    def fail_first(block, block_info=None):
        if block_info[0]["chunk-location"] == (0, 0):
            raise RuntimeError("a task failed")
        time.sleep(0.3)  # the others still run when the first fails
        return block

    lazy = da.ones((64, 64), chunks=16, dtype=">f4").map_blocks(
        fail_first, meta=np.empty((0, 0), ">f4"))
    with contextlib.ExitStack() as stack:
        if scheduler == "distributed":
            distributed = pytest.importorskip("distributed")
            stack.enter_context(distributed.Client(processes=False, n_workers=1,
                                                   threads_per_worker=4,
                                                   dashboard_address=None))
        with pytest.raises(RuntimeError, match="a task failed"):
            fftconv.write_image(lazy, tmp_path / "out.zarr",
                                **({"scheduler": "threads", "num_workers": 4}
                                   if scheduler == "threads" else {}))
        time.sleep(1.0)  # every task that was running has finished
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_killed_worker_leaves_no_temporary_output_and_the_old_one_whole(tmp_path):
    """A worker process dies mid-run (the OOM killer, a node lost): the run fails, nothing
    is left beside the target, and the output it was to replace is untouched."""
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    import dask

    old = np.full((64, 64), 7, np.float32)
    fftconv.write_image(old, tmp_path / "out.zarr")

    def die(block, block_info=None):
        if block_info[0]["chunk-location"] == (1, 1):
            os._exit(1)  # as SIGKILL would: no cleanup, no exception
        return block

    lazy = da.ones((64, 64), chunks=16, dtype=np.float32).map_blocks(
        die, meta=np.empty((0, 0), np.float32))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        with pytest.raises(distributed.KilledWorker):
            fftconv.write_image(lazy, tmp_path / "out.zarr", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    np.testing.assert_array_equal(fftconv.open_image(tmp_path / "out.zarr").compute(), old)


# -- older libraries ------------------------------------------------------------------------------

def test_a_dask_without_task_spec_graphs_still_tiles_from_a_store(tmp_path, monkeypatch):
    """With dask 2024.1 (``pyproject``'s lower bound) the Dask path raised
    ``ModuleNotFoundError: No module named 'dask._task_spec'``; without it the halos come
    from the one read of each chunk, with the same values."""
    pytest.importorskip("dask.array")
    x = np.random.default_rng(2).random((96, 80)).astype(np.float32)
    fftconv.write_image(x, tmp_path / "in.zarr")
    from fftconv._tiling import graph

    monkeypatch.setattr(graph, "_task_class", lambda: None)  # as when the import fails
    lazy = fftconv.open_image(tmp_path / "in.zarr", chunks=(32, 40))
    k = np.ones((7, 5), np.float32)
    got = fftconv.convolve(lazy, k, boundary="reflect").compute()
    np.testing.assert_allclose(got, fftconv.convolve(x, k, boundary="reflect"), atol=1e-5)


def test_the_numpy_backend_keeps_single_precision_on_numpy_1(monkeypatch):
    """NumPy before 2.0 transforms float32 in double and returns complex128: the numpy
    backend handed that on, against the contract (float32 in, complex64 out)."""
    from fftconv.backends import numpy_

    backend = numpy_.NumpyBackend()
    real_rfftn, real_irfftn = np.fft.rfftn, np.fft.irfftn
    monkeypatch.setattr(np.fft, "rfftn", lambda x, **kw: real_rfftn(x.astype(np.float64), **kw))
    monkeypatch.setattr(np.fft, "irfftn",
                        lambda x, **kw: real_irfftn(x.astype(np.complex128), **kw))
    x = np.ones((8, 8), np.float32)
    spectrum = backend.rfftn(x, (8, 8), (0, 1))
    assert spectrum.dtype == np.complex64
    assert backend.irfftn(spectrum, (8, 8), (0, 1)).dtype == np.float32
    assert backend.rfftn(x.astype(np.float64), (8, 8), (0, 1)).dtype == np.complex128


def test_without_hard_links_the_move_still_refuses_to_replace(tmp_path, monkeypatch):
    """A file system without hard links (some network mounts) claims the name instead."""
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    from fftconv._infra import files

    monkeypatch.setattr(files, "_renameat2", lambda *a: False)  # no renameat2 either
    monkeypatch.setattr(os, "link", no_links)
    fftconv.write_image(np.ones((4, 4), np.float32), tmp_path / "a.npy")
    np.testing.assert_array_equal(_content(tmp_path / "a.npy"), 1)
    (tmp_path / "new").write_text("new")
    with pytest.raises(FileExistsError):
        files.move_new(tmp_path / "new", tmp_path / "a.npy")
    np.testing.assert_array_equal(_content(tmp_path / "a.npy"), 1)


def test_a_registered_backend_object_travels_to_worker_processes_by_name(rng):
    """``backend=<the pyFFTW object>`` froze the object into every task: the processes
    scheduler could not pickle it (it holds a module)."""
    da = pytest.importorskip("dask.array")
    pytest.importorskip("pyfftw")
    import pickle

    from fftconv._registry import load_backend
    from fftconv._tiling import frozen_settings

    backend = load_backend("pyfftw")
    assert frozen_settings(backend)["backend"] == "pyfftw"
    pickle.dumps(frozen_settings(backend))
    x = rng.random((48, 40)).astype(np.float32)
    k = rng.random((5, 5)).astype(np.float32)
    lazy = fftconv.convolve(da.from_array(x, chunks=24), k, method="fft", backend=backend)
    np.testing.assert_allclose(lazy.compute(scheduler="processes", num_workers=2),
                               fftconv.convolve(x, k, method="fft"), atol=1e-5)
