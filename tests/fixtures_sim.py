"""Simulator fixtures: one generated dataset per session, a fresh server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.simulator.testing import (
    DatasetSpec,
    SimulatorHandle,
    second_host_spec,
    start_simulator,
)


@pytest.fixture(scope="session")
def sim_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared data dir: DICOM files and ZIPs are content-keyed, so tests cannot spoil it."""
    return tmp_path_factory.mktemp("sim-data")


@pytest.fixture
def simulator(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    """A simulator at the base dataset; releases and faults die with the test."""
    with start_simulator(sim_data_dir, DatasetSpec()) as handle:
        yield handle


@pytest.fixture
def second_simulator(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    """A second, independent NBIA host (like NLST's): collection "NLST", other UIDs."""
    with start_simulator(sim_data_dir, second_host_spec(DatasetSpec())) as handle:
        yield handle
