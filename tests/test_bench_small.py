"""The small-images benchmark runs and reports every contender (a smoke test; no timing
asserted)."""

from __future__ import annotations

from benchmarks import small


def test_quick_report(tmp_path):
    assert small.main(["--quick", "--results", str(tmp_path)]) == 0
    (report,) = tmp_path.glob("*-small-quick.md")
    rows = [row for row in report.read_text().splitlines() if "² ⊛ " in row]
    assert len(rows) == 4 and all(row.count("×)") == 3 for row in rows)
    assert all("convolve" in row and "cv2.filter2D" in row for row in rows)
