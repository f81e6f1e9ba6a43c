"""The OpenCV benchmark runs every contender in its own process and reports them (a smoke
test; no timing asserted)."""

from __future__ import annotations

import pytest


def test_quick_report(tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("scipy")
    from benchmarks import opencv

    assert opencv.main(["--quick", "--results", str(tmp_path)]) == 0
    (report,) = tmp_path.glob("*-opencv-quick.md")
    rows = [row for row in report.read_text().splitlines() if "² ⊛ " in row]
    assert len(rows) == 2
    assert rows[0].count("×,") == 5 and rows[1].count("×,") == 2
    assert all(float(cell.split("diff ")[1].split(")")[0]) < 1e-4
               for row in rows for cell in row.split(" ; "))
    assert not (tmp_path / "opencv-samples").exists()
