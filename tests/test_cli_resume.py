"""--resume: a run killed by SIGTERM midway, then the same command with --resume, equals
an uninterrupted run and computes only the missing chunks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fftconv
from fftconv import cli
from fftconv._cli import resume

pytest.importorskip("zarr")


def _argv(tmp_path, *more):
    return ["convolve", str(tmp_path / "in.npy"), "gaussian:sigma=2", str(tmp_path / "out.zarr"),
            "--boundary", "reflect", "--chunks", "32", "--resume", *more]


def test_a_run_killed_midway_resumes_with_only_the_missing_chunks(tmp_path, rng, monkeypatch):
    image = rng.random((256, 192)).astype(np.float32)
    np.save(tmp_path / "in.npy", image)
    total = 8 * 6
    script = textwrap.dedent(f"""
        import sys, time
        from fftconv import cli
        from fftconv._cli import resume
        original = resume.ChunkRecord.__call__
        def slow(self, block, index):  # a long job: a chunk every 50 ms
            time.sleep(0.05)
            return original(self, block, index)
        resume.ChunkRecord.__call__ = slow
        sys.exit(cli.main({_argv(tmp_path, "--scheduler", "synchronous")!r}))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    done = tmp_path / ".out.zarr.resume" / resume.DONE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
            not done.exists() or len(done.read_text().splitlines()) < 10):
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines() == [
        "fftconv: terminated; the chunks written are kept; the same command with --resume "
        "finishes the rest"]
    before = len(done.read_text().splitlines())
    assert 10 <= before < total and not (tmp_path / "out.zarr").exists()

    calls = []
    original = resume.ChunkRecord.__call__
    monkeypatch.setattr(resume.ChunkRecord, "__call__",
                        lambda self, block, index: calls.append(index) or original(
                            self, block, index))
    assert cli.main(_argv(tmp_path)) == 0
    assert len(calls) == total - before  # only the missing chunks were computed
    assert not (tmp_path / ".out.zarr.resume").exists()
    got = fftconv.open_image(tmp_path / "out.zarr").compute()
    want = fftconv.convolve(image, fftconv.kernels.gaussian(2.0).astype(np.float32),
                            boundary="reflect")
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_the_work_of_another_job_is_refused_in_one_line(tmp_path, rng, capsys):
    np.save(tmp_path / "in.npy", rng.random((64, 64)).astype(np.float32))
    work = tmp_path / ".out.zarr.resume"
    work.mkdir()
    (work / resume.RECORD).write_text('{"mode": "full"}')
    assert cli.main(_argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "holds the work of another job" in err
    assert work.exists() and not (tmp_path / "out.zarr").exists()


def test_resume_needs_a_zarr_output_and_a_complete_run_leaves_no_work(tmp_path, rng, capsys):
    np.save(tmp_path / "in.npy", rng.random((64, 64)).astype(np.float32))
    argv = _argv(tmp_path)
    argv[3] = str(tmp_path / "out.npy")
    assert cli.main(argv) == 2 and "--resume needs a .zarr output" in capsys.readouterr().err
    assert cli.main(_argv(tmp_path)) == 0
    assert "4 chunks computed" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "out.zarr"]


def test_an_input_changed_since_the_interrupted_run_is_another_job(tmp_path, rng, capsys,
                                                                    monkeypatch):
    np.save(tmp_path / "in.npy", rng.random((96, 64)).astype(np.float32))
    original = resume.ChunkRecord.__call__
    count = []

    def interrupted(self, block, index):
        if len(count) == 2:
            raise KeyboardInterrupt  # Ctrl-C after two chunks
        count.append(index)
        return original(self, block, index)

    monkeypatch.setattr(resume.ChunkRecord, "__call__", interrupted)
    assert cli.main(_argv(tmp_path, "--scheduler", "synchronous")) == 130
    assert "the chunks written are kept" in capsys.readouterr().err
    stat = os.stat(tmp_path / "in.npy")
    os.utime(tmp_path / "in.npy", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    monkeypatch.setattr(resume.ChunkRecord, "__call__", original)
    assert cli.main(_argv(tmp_path)) == 2
    assert "input_modified was" in capsys.readouterr().err
