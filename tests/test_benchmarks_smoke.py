"""The side-by-side benchmark harness still runs: tiny datasets, one run, every table filled.

Benchmarks are not part of the suite; this only keeps ``benchmarks/run.py`` from rotting.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tcia_utils")

REPO = Path(__file__).resolve().parents[1]
CONTENDERS = {"b1": {"tcia-mirror", "tcia-utils", "raw floor"},
              "b2": {"tcia-mirror", "tcia-utils"},
              "b3": {"tcia-mirror", "tcia-utils", "raw floor"},
              "b4": {"tcia-mirror"}}


def sections(text: str) -> dict[str, list[list[str]]]:
    """Section key (b1..b4) -> table rows (cells) of the printed Markdown."""
    out: dict[str, list[list[str]]] = {}
    key = None
    for line in text.splitlines():
        if m := re.match(r"### (B\d) ", line):
            key = m.group(1).lower()
            out[key] = []
        elif key and line.startswith("| ") and not line.startswith("| contender"):
            out[key].append([c.strip() for c in line.strip("|").split("|")])
    return out


def positive(cell: str) -> bool:
    number = float(cell.rstrip("x%").replace(",", ""))
    return number > 0


def test_quick_run_prints_every_contender_with_positive_numbers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--work",
         str(tmp_path)], capture_output=True, text=True, timeout=110, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = sections(proc.stdout)
    assert set(tables) == set(CONTENDERS), proc.stdout
    for key, rows in tables.items():
        assert {r[0] for r in rows} == CONTENDERS[key], (key, rows)
        for row in rows:
            # wall time, MB/s or RSS and request counts: every measured figure is > 0
            numbers = [c for c in row[1:] if re.fullmatch(r"[\d,.]+x?", c)]
            assert numbers and all(positive(c) for c in numbers), (key, row)
    assert "### Targets" in proc.stdout
    b4 = tables["b4"][0]
    assert b4[1] == "200" and 0 < float(b4[6]) <= 3, b4  # series in sync, per collection
