"""The line benchmark runs and reports every contender (a smoke test; no timing asserted)."""

from __future__ import annotations

from benchmarks import lines


def test_quick_report(tmp_path, capsys):
    assert lines.main(["--quick", "--results", str(tmp_path)]) == 0
    (report,) = tmp_path.glob("*-lines-quick.md")
    rows = [row for row in report.read_text().splitlines() if row.startswith("| signal")
            or row.startswith("| volume")]
    assert len(rows) == 3 and all("×)" in row for row in rows)
    assert "oaconvolve" in rows[0] and "gaussian_filter" in rows[2]
