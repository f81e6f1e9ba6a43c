"""The out-of-core benchmark runs every contender on a small image, each in a child
process, and reports them with the seams' agreement (a smoke test; no timing asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("dask_image")
pytest.importorskip("pyfftw")


def test_small_report(tmp_path):
    from benchmarks import dask_bench

    dask_bench.main(["--size", "512", "--chunks", "256", "--radius", "8", "--small-radius", "2",
                     "--repeat", "1", "--big", "0", "--workdir", str(tmp_path),
                     "--results", str(tmp_path / "results")])
    (report,) = (tmp_path / "results").glob("*-dask.md")
    text = report.read_text()
    rows = {row.split(" | ")[0].removeprefix("| ") for row in text.splitlines()
            if row.startswith("| ") and not row.startswith("| contender")}
    assert rows == {*dask_bench.CONTENDERS, "dask-image (estimated)"}
    assert "written by dask's store as the baseline is" in text
    agreement = float(text.split("max relative difference ")[1].rstrip(".\n"))
    assert agreement < 1e-5
    assert not [p for p in tmp_path.iterdir() if p.name != "results"]  # the work folder is gone
