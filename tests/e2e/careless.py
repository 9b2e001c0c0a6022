"""Shared by the careless-user tests: the one-error-line check, small mirrors, and fixtures
(registered as a plugin in tests/conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.e2e.harness import Mirror, write_mirror


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed run; nothing else on stderr looks like an error."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "ExceptionGroup" not in text, text[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("tcia-mirror: error:")]
    assert len(lines) == 1, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return lines[0]


@pytest.fixture
def two_collections(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, DatasetSpec(collections=2)) as handle:
        yield handle


def sqlite_mirror(tmp_path: Path, sim: SimulatorHandle, collections: list[str],
                  **kw: Any) -> Mirror:
    return write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=collections,
                        catalog_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}", **kw)


@pytest.fixture
def immutable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory that even root cannot write into (chattr +i), or skip saying why."""
    path = tmp_path / "immutable"
    path.mkdir()
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True,
                          check=False) if _has("chattr") else None
    if proc is None or proc.returncode != 0:
        pytest.skip(f"chattr +i unavailable here: {proc.stderr.strip() if proc else 'none'}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _has(tool: str) -> bool:
    return subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                          check=False).returncode == 0


@pytest.fixture
def slow_sim(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    """Twelve series whose ZIPs take a second each: two syncs surely overlap."""
    with start_simulator(sim_data_dir, DatasetSpec(collections=2, series=3)) as handle:
        for endpoint in ("getImage", "getImageWithMD5Hash"):
            handle.add_fault(endpoint, "latency", seconds=1.0)
        yield handle
