"""The Dask small-kernels benchmark runs, checks every contender against fftconv and
reports them (a smoke test; no timing asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("dask_image")
pytest.importorskip("cv2")


def test_quick_report(tmp_path):
    from benchmarks import dask_small

    assert dask_small.main(["--quick", "--results", str(tmp_path)]) == 0
    (report,) = tmp_path.glob("*-dask-small-quick.md")
    text = report.read_text()
    rows = [row for row in text.splitlines() if row.startswith("| random") or
            row.startswith("| Gaussian")]
    assert [row.count("×)") for row in rows] == [3, 3, 2]  # no dask-image at 31²
    agreements = [float(line.split("within ")[1].split()[0]) for line in text.splitlines()
                  if "agree with fftconv's" in line]
    assert len(agreements) == 3 and max(agreements) < 1e-5
