"""The benchmark datasets (full and --quick sizes), served by the offline simulator.

Each dataset lives in its own data directory under the work folder, so its DICOM files
and the simulator's ZIP cache are generated once and reused by later runs.
"""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator

KIB = 1024
API = "nbia-v4"


@dataclass(frozen=True)
class Dataset:
    key: str  #: b1 | b2 | b3 | b4
    about: str
    spec: DatasetSpec


FULL = {
    "b1": Dataset("b1", "40 series x 100 instances x ~256 KiB (~1 GB)", DatasetSpec(
        seed=11, collections=1, patients=20, studies=1, series=2, instances=100,
        instance_size=256 * KIB)),
    "b2": Dataset("b2", "1 series x 2,000 instances x ~512 KiB (~1 GB)", DatasetSpec(
        seed=12, collections=1, patients=1, studies=1, series=1, instances=2000,
        instance_size=512 * KIB)),
    "b3": Dataset("b3", "2,000 series x 1 instance x ~2 KiB", DatasetSpec(
        seed=13, collections=1, patients=1000, studies=1, series=2, instances=1,
        instance_size=2 * KIB)),
    "b4": Dataset("b4", "100,000 series in 4 collections, all in sync", DatasetSpec(
        seed=14, collections=4, patients=12500, studies=1, series=2, instances=1,
        instance_size=128)),
}
QUICK = {
    "b1": Dataset("b1", "4 series x 3 instances x ~16 KiB", DatasetSpec(
        seed=21, collections=1, patients=2, studies=1, series=2, instances=3,
        instance_size=16 * KIB)),
    "b2": Dataset("b2", "1 series x 8 instances x ~64 KiB", DatasetSpec(
        seed=22, collections=1, patients=1, studies=1, series=1, instances=8,
        instance_size=64 * KIB)),
    "b3": Dataset("b3", "20 series x 1 instance x ~2 KiB", DatasetSpec(
        seed=23, collections=1, patients=10, studies=1, series=2, instances=1,
        instance_size=2 * KIB)),
    "b4": Dataset("b4", "200 series in 2 collections, all in sync", DatasetSpec(
        seed=24, collections=2, patients=50, studies=1, series=2, instances=1,
        instance_size=128)),
}


@dataclass(frozen=True)
class Totals:
    series: int
    instances: int
    bytes: int  #: DICOM bytes as stored (what FileSize counts)


@contextmanager
def serve(work: Path, dataset: Dataset) -> Iterator[SimulatorHandle]:
    """The simulator for *dataset*, its files generated on first use only."""
    data_dir = work / "sim" / f"{dataset.key}-seed{dataset.spec.seed}"
    with start_simulator(data_dir, dataset.spec) as sim:
        yield sim


def totals(sim: SimulatorHandle) -> Totals:
    truth = sim.ground_truth()
    return Totals(len(truth), sum(s.image_count for s in truth.values()),
                  sum(s.file_size for s in truth.values()))


def warm_zips(sim: SimulatorHandle) -> None:
    """Ask once for every ZIP the contenders will ask for, so no timed run pays for a build.

    tcia-mirror and the floor fetch getImageWithMD5Hash (nbiatoolkit too, on v2: the same
    ZIP); tcia-utils fetches getImage?NewFileNames=Yes. The simulator caches each variant
    on disk.
    """
    base = sim.base_url(API)
    urls = []
    for uid in sim.ground_truth():
        q = urllib.parse.quote(uid)
        urls.append(f"{base}/getImageWithMD5Hash?SeriesInstanceUID={q}")
        urls.append(f"{base}/getImage?NewFileNames=Yes&SeriesInstanceUID={q}")
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in pool.map(_drain, urls):
            pass


def _drain(url: str) -> int:
    n = 0
    with urllib.request.urlopen(url, timeout=600) as resp:
        while chunk := resp.read(1 << 20):
            n += len(chunk)
    return n


def output_totals(root: Path, *, skip: tuple[str, ...] = (".staging",)) -> Totals:
    """DICOM files (``*.dcm``) under *root* and their bytes; series = their directories."""
    dirs, count, size = set(), 0, 0
    for path in root.rglob("*.dcm"):
        if any(part in skip for part in path.relative_to(root).parts):
            continue
        dirs.add(path.parent)
        count += 1
        size += path.stat().st_size
    return Totals(len(dirs), count, size)


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
