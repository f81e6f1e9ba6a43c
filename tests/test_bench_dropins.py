"""The scipy drop-ins benchmark runs and reports every row (a smoke test; no timing
asserted)."""

from __future__ import annotations

import pytest


def test_quick_report(tmp_path):
    pytest.importorskip("scipy")
    from benchmarks import dropins

    assert dropins.main(["--quick", "--results", str(tmp_path)]) == 0
    (report,) = tmp_path.glob("*-dropins-quick.md")
    rows = [row for row in report.read_text().splitlines() if "² ⊛ " in row]
    assert len(rows) == 6 and all(row.count("×") == 1 for row in rows)
    assert all(float(row.split("|")[-2]) < 1e-4 for row in rows)  # the same numbers
