"""The side-by-side benchmark harness still runs: tiny datasets, one run, every table filled.

Benchmarks are not part of the suite; this only keeps ``benchmarks/run.py`` from rotting.
nbiatoolkit runs from a venv that ``.ci/setup`` (or a first benchmark run) makes from
PyPI; the suite never reaches PyPI itself, so without that venv nbiatoolkit is left out
(its tests skipped, with the reason).
The off-machine guard of nbiatoolkit's runner is tested without nbiatoolkit.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("tcia_utils")
# the first test also waits for the quick run
pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "benchmarks" / "sidebyside" / "nbiatoolkit_run.py"
NBTK = "nbiatoolkit"
CONTENDERS = {"b1": {"tcia-mirror", "tcia-utils", "raw floor"},
              "b2": {"tcia-mirror", "tcia-utils"},
              "b3": {"tcia-mirror", "tcia-utils", "raw floor"},
              "b4": {"tcia-mirror"}}


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nbiatoolkit_python() -> tuple[Path | None, str]:
    """The harness's nbiatoolkit venv python, or None and why not (never made here)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from sidebyside import contenders
        return contenders.nbiatoolkit_python(make=False), ""
    except contenders.Unavailable as exc:
        return None, str(exc)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.fixture(scope="module")
def nbiatoolkit() -> tuple[Path | None, str]:
    return _nbiatoolkit_python()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory,
              nbiatoolkit: tuple[Path | None, str]) -> subprocess.CompletedProcess[str]:
    work = tmp_path_factory.mktemp("bench")
    skip = [] if nbiatoolkit[0] else ["--no-nbiatoolkit"]
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--work", str(work),
         *skip], capture_output=True, text=True, timeout=300, cwd=work)


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


def test_quick_run_prints_every_contender_with_positive_numbers(
        quick_run: subprocess.CompletedProcess[str],
        nbiatoolkit: tuple[Path | None, str]) -> None:
    proc = quick_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = sections(proc.stdout)
    assert set(tables) == set(CONTENDERS), proc.stdout
    for key, rows in tables.items():
        extra = {NBTK} if nbiatoolkit[0] and key in ("b1", "b2", "b3") else set()
        assert {r[0] for r in rows} == CONTENDERS[key] | extra, (key, rows)
        for row in rows:
            # wall time, MB/s or RSS and request counts: every measured figure is > 0
            numbers = [c for c in row[1:] if re.fullmatch(r"[\d,.]+x?", c)]
            assert numbers and all(positive(c) for c in numbers), (key, row)
    assert "### Targets" in proc.stdout
    b4 = tables["b4"][0]
    assert b4[1] == "200" and 0 < float(b4[6]) <= 3, b4  # series in sync, per collection


def test_quick_run_covers_nbiatoolkit(quick_run: subprocess.CompletedProcess[str],
                                      nbiatoolkit: tuple[Path | None, str]) -> None:
    if nbiatoolkit[0] is None:
        pytest.skip(f"nbiatoolkit not installed: {nbiatoolkit[1]}")
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    tables = sections(quick_run.stdout)
    for key in ("b1", "b2", "b3"):
        row = next(r for r in tables[key] if r[0] == NBTK)
        assert all(positive(c) for c in row[1:] if re.fullmatch(r"[\d,.]+x?", c)), row
    ratios = re.findall(r"^nbiatoolkit time / tcia-mirror time: ([\d.]+)x, CPU ([\d.]+)x",
                        quick_run.stdout, re.M)
    assert len(ratios) == 3 and all(float(a) > 0 and float(b) > 0 for a, b in ratios)
    # its requests are v2 ones: the token (posted twice), one listing, one ZIP per series
    b3 = next(r for r in tables["b3"] if r[0] == NBTK)
    assert b3[7] == "23", b3  # 20 series


GUARD_PROBE = """
import importlib.util, socket, sys
import requests
spec = importlib.util.spec_from_file_location("nbrun", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
port = srv.getsockname()[1]
m.install_guard()
socket.create_connection(("127.0.0.1", port)).close()
out = ["127.0.0.1 ok"]
# every other target is on this machine too, so a broken guard still stays local
for attempt in (lambda: socket.getaddrinfo("localhost", port),
                lambda: socket.create_connection(("127.0.0.2", port), timeout=5),
                lambda: socket.socket().connect_ex(("127.0.0.2", port)),
                lambda: requests.get(f"http://localhost:{port}/", timeout=5)):
    try:
        attempt()
        out.append("connected")
    except m.OffMachine:
        out.append("refused")
print(out)
"""


def test_guard_refuses_everything_but_127_0_0_1() -> None:
    proc = subprocess.run([sys.executable, "-c", GUARD_PROBE, str(RUNNER)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert ast.literal_eval(proc.stdout.strip()) == ["127.0.0.1 ok"] + ["refused"] * 4


@pytest.mark.parametrize("url", ["https://services.cancerimagingarchive.net/nbia-api/services/v4",
                                 "http://localhost:8080/nbia-api/services/v4",
                                 "http://127.0.0.1:8080/elsewhere"])
def test_runner_refuses_a_base_url_off_127_0_0_1(tmp_path: Path, url: str) -> None:
    proc = subprocess.run([sys.executable, str(RUNNER), url, "C", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "nbiatoolkit_run:" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


NBTK_PROBE = """
import importlib.util, socket, sys
spec = importlib.util.spec_from_file_location("nbrun", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
m.install_guard()
try:
    socket.getaddrinfo("localhost", 80)
    sys.exit("guard not in place: stopping before any public name is looked up")
except m.OffMachine:
    pass
from nbiatoolkit import NBIAClient
client = NBIAClient(log_level="CRITICAL")  # as shipped: the public host, its real logout
out = []
for attempt in (client.getCollections, client.OAuth_client.logout):
    try:
        attempt()
        out.append("connected")
    except m.OffMachine as exc:
        out.append(str(exc))
print(out)
"""


def test_guard_stops_nbiatoolkits_hard_coded_hosts(nbiatoolkit: tuple[Path | None, str]) -> None:
    if nbiatoolkit[0] is None:
        pytest.skip(f"nbiatoolkit not installed: {nbiatoolkit[1]}")
    proc = subprocess.run([str(nbiatoolkit[0]), "-c", NBTK_PROBE, str(RUNNER)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    refused = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert refused == ["refused to resolve 'services.cancerimagingarchive.net': only "
                       "127.0.0.1 is allowed"] * 2
