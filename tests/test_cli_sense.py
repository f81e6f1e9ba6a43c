"""The command line takes PSFs and channels with sense: sums, precision, integer outputs,
one kernel per channel, and the axes line."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv
from fftconv import cli

pytest.importorskip("zarr")
OME = {"version": "0.5",
       "axes": [{"name": "c", "type": "channel"},
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"}],
       "datasets": [{"path": "0", "coordinateTransformations": [
           {"type": "scale", "scale": [1.0, 0.5, 0.1, 0.1]}]}]}


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_raw_psf_is_warned_about_and_normalised_on_request(tmp_path, capsys, rng):
    """A uint16 bead PSF summing to 64 844 turned a mean of 2000 into 1.28e8 in silence."""
    image = np.full((40, 40), 2000, np.uint16)
    psf = rng.integers(0, 5000, (5, 5)).astype(np.uint16)
    np.save(tmp_path / "in.npy", image)
    np.save(tmp_path / "psf.npy", psf)
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", tmp_path / "psf.npy",
                        tmp_path / "raw.npy", "--boundary", "reflect")
    total = int(psf.sum())
    assert code == 0 and err.strip().splitlines() == [
        f"fftconv: warning: kernel '{tmp_path / 'psf.npy'}' sums to {total}, not 1: the "
        f"output is {total} times as bright as the input; --normalize divides it by its sum"]
    np.testing.assert_allclose(np.load(tmp_path / "raw.npy").mean(), 2000 * total, rtol=1e-5)
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", tmp_path / "psf.npy",
                        tmp_path / "normal.npy", "--boundary", "reflect", "--normalize")
    assert code == 0 and err == ""
    np.testing.assert_allclose(np.load(tmp_path / "normal.npy"), 2000, rtol=1e-5)


def test_a_float64_psf_keeps_a_float32_output_and_a_zero_sum_kernel_is_quiet(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((16, 16), np.float32))
    np.save(tmp_path / "psf.npy", np.full((3, 3), 1 / 9))
    np.save(tmp_path / "edge.npy", np.array([[1.0, 0.0, -1.0]] * 3))
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", tmp_path / "psf.npy",
                        tmp_path / "out.npy")
    assert code == 0 and err == "" and np.load(tmp_path / "out.npy").dtype == np.float32
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", tmp_path / "edge.npy",
                        tmp_path / "edges.npy")
    assert code == 0 and err == ""
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", tmp_path / "edge.npy",
                        tmp_path / "never.npy", "--normalize")
    assert code == 2 and "sums to 0" in err and not (tmp_path / "never.npy").exists()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_integer_outputs_are_rounded_and_clipped(tmp_path, capsys, dtype):
    values = np.array([[-5.0, 0.4, 0.6, 2.5, 300.0, 70000.0, np.nan]], np.float32)
    np.save(tmp_path / "in.npy", values)
    np.save(tmp_path / "one.npy", np.ones((1, 1), np.float32))
    code, _, _ = _run(capsys, "convolve", tmp_path / "in.npy", tmp_path / "one.npy",
                      tmp_path / "out.npy", "--dtype", dtype)
    out = np.load(tmp_path / "out.npy")
    info = np.iinfo(dtype)
    want = np.nan_to_num(np.clip(np.rint(values), info.min, info.max), nan=0).astype(dtype)
    assert code == 0 and out.dtype == dtype
    np.testing.assert_array_equal(out, want)


def test_channels_are_never_convolved_and_get_one_kernel_each(tmp_path, capsys, rng):
    """A (c, z, y, x) PSF on a (c, z, y, x) OME-Zarr convolved along c too: output channel 1
    was input 1 + 2 × channel 0 for a PSF (0, 1, 2) along c."""
    data = rng.random((2, 4, 16, 16)).astype(np.float32)
    fftconv.write_image(data, tmp_path / "cells.zarr", ome=OME)
    psf = rng.random((2, 3, 3, 3)).astype(np.float32)
    psf /= psf.sum(axis=(1, 2, 3), keepdims=True)
    np.save(tmp_path / "psf.npy", psf)
    code, out, _ = _run(capsys, "convolve", tmp_path / "cells.zarr", tmp_path / "psf.npy",
                        tmp_path / "out.zarr", "--boundary", "reflect")
    assert code == 0
    assert f"{tmp_path / 'cells.zarr'}: axes 1,2,3 (z, y, x); c is not space: one kernel " \
           "per c" in out
    got = fftconv.open_image(tmp_path / "out.zarr").compute()
    for c in range(2):
        np.testing.assert_allclose(got[c], fftconv.convolve(data[c], psf[c],
                                                             boundary="reflect"), atol=1e-6)
    np.save(tmp_path / "three.npy", np.ones((3, 3, 3, 3), np.float32) / 81)
    code, _, err = _run(capsys, "convolve", tmp_path / "cells.zarr", tmp_path / "three.npy",
                        tmp_path / "bad.zarr")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "3 long along c, the input 2: one kernel per c needs 2" in err


def test_normalize_divides_each_channels_kernel_by_its_own_sum(tmp_path, capsys, rng):
    data = rng.random((2, 4, 16, 16)).astype(np.float32)
    fftconv.write_image(data, tmp_path / "cells.zarr", ome=OME)
    raw = rng.integers(1, 9000, (2, 3, 3, 3)).astype(np.uint16)
    np.save(tmp_path / "psf.npy", raw)
    code, out, err = _run(capsys, "convolve", tmp_path / "cells.zarr", tmp_path / "psf.npy",
                          tmp_path / "out.zarr", "--normalize", "--dry-run")
    assert code == 0 and "sums 1, 1 (one kernel each)" in out and err == ""
    code, _, _ = _run(capsys, "convolve", tmp_path / "cells.zarr", tmp_path / "psf.npy",
                      tmp_path / "out.zarr", "--normalize")
    got = fftconv.open_image(tmp_path / "out.zarr").compute()
    for c in range(2):
        k = raw[c] / raw[c].sum(dtype=np.float64)
        np.testing.assert_allclose(got[c], fftconv.convolve(data[c], k), atol=1e-5)


def test_the_axes_line_is_always_printed(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((12, 10), np.float32))
    code, out, _ = _run(capsys, "convolve", tmp_path / "in.npy", "box:size=3",
                        tmp_path / "out.npy")
    assert code == 0 and f"{tmp_path / 'in.npy'}: axes 0,1 (all; the file names none)" in out


def test_a_dry_run_reads_metadata_and_writes_nothing(tmp_path, capsys, rng):
    fftconv.write_image(rng.random((2, 4, 64, 48)).astype(np.float32), tmp_path / "cells.zarr",
                        ome=OME)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _run(capsys, "convolve", tmp_path / "cells.zarr", "gaussian:sigma=0.2um",
                          tmp_path / "out.zarr", "--chunks", "1,4,32,48", "--dry-run")
    assert code == 0 and err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    text = out.replace(str(tmp_path), "T")
    for expected in ("input   T/cells.zarr: 2 x 4 x 64 x 48 float32, 4 chunks of 1 x 4 x 32 x 48",
                     "axes c, z, y, x; pixel sizes c 1, z 0.5 micrometer, y 0.1 micrometer",
                     "kernel  gaussian:sigma=0.2um: 5 x 17 x 17 float32, sum 1",
                     "tiling  4 tiles of up to 1 x 8 x 48 x 64 (output block plus halo "
                     "0 x 4 x 16 x 16)",
                     "output  T/out.zarr: 2 x 4 x 64 x 48 float32, chunks 1 x 4 x 32 x 48, "
                     "OME-Zarr 0.5", "dry run: nothing was read"):
        assert expected in text, (expected, text)
    assert "estimate about" in text and "each tile:" in text


def test_plan_takes_files_and_named_kernels(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((300, 200), np.uint16))
    code, out, _ = _run(capsys, "plan", "--image", tmp_path / "in.npy", "--kernel",
                        "gaussian:sigma=2")
    assert code == 0 and out.startswith("image 300 x 200, kernel 17 x 17\nmethod: ")
    np.save(tmp_path / "k.npy", np.ones((5, 4)))
    code, out, _ = _run(capsys, "plan", "--image", "64x64", "--kernel", tmp_path / "k.npy")
    assert code == 0 and out.startswith("image 64 x 64, kernel 5 x 4\n")


# -- progress -----------------------------------------------------------------------------------

def test_progress_lines_for_a_batch_log_and_quiet(tmp_path, capsys, rng):
    np.save(tmp_path / "in.npy", rng.random((96, 80)).astype(np.float32))
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", "box:size=3",
                        tmp_path / "a.zarr", "--chunks", "32", "--progress")
    assert code == 0 and err.strip().splitlines()[-1].startswith(
        "fftconv: 9/9 chunks written (100%), ")
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", "box:size=3",
                        tmp_path / "b.zarr", "--chunks", "32", "--progress", "-q")
    assert code == 0 and err == ""
    code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", "box:size=3",
                        tmp_path / "c.zarr", "--chunks", "32")  # not a terminal: silent
    assert code == 0 and err == ""


def test_a_batch_log_gets_a_line_every_few_seconds(monkeypatch):
    import io

    from fftconv._cli import progress as progress_module

    now = [0.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    out = io.StringIO()
    report = progress_module.Reporter(out, terminal=False, every=5.0)
    for step in range(1, 21):  # a chunk a second
        now[0] = float(step)
        report.update(step, 20, final=step == 20)
    lines = out.getvalue().splitlines()
    assert [line.split(" chunks")[0] for line in lines] == [
        "fftconv: 1/20", "fftconv: 6/20", "fftconv: 11/20", "fftconv: 16/20", "fftconv: 20/20"]
    assert lines[1].endswith("1.0 chunks/s, 0:06 elapsed, ETA 0:14")


def test_progress_on_a_distributed_cluster_follows_its_counts(tmp_path, capsys, rng):
    distributed = pytest.importorskip("distributed")
    np.save(tmp_path / "in.npy", rng.random((64, 64)).astype(np.float32))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        code, _, err = _run(capsys, "convolve", tmp_path / "in.npy", "box:size=3",
                            tmp_path / "out.zarr", "--chunks", "32", "--progress",
                            "--scheduler", cluster.scheduler_address)
    lines = err.strip().splitlines()
    assert code == 0 and lines[0].startswith("fftconv: dask.distributed dashboard: http")
    assert lines[-1].startswith("fftconv: 4/4 chunks written (100%)")
