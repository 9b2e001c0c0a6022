"""TCIA's own client, tcia_utils, works unmodified against the simulator's v4 dialect."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mirror.simulator.testing import SimulatorHandle

nbia = pytest.importorskip("tcia_utils.nbia")


# tcia_utils itself calls a pandas API that pandas 3 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename")
def test_tcia_utils_v4_round_trip(simulator: SimulatorHandle, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base = simulator.base_url("nbia-v4") + "/"
    # tcia_utils hard-codes its hosts; setApiUrl is the one place that builds them.
    monkeypatch.setattr(nbia, "setApiUrl", lambda endpoint, api_url="nbia": base)
    assert nbia.getCollections() == [{"Collection": "SIM-LUNG"}]
    series = nbia.getSeries(collection="SIM-LUNG")
    truth = simulator.ground_truth()
    assert {s["SeriesInstanceUID"] for s in series} == set(truth)
    uid = series[0]["SeriesInstanceUID"]
    assert nbia.getSeriesSize(uid) == [{"TotalSizeInBytes": truth[uid].file_size,
                                        "ObjectCount": truth[uid].image_count}]
    meta = nbia.downloadSeries(series[:2], path=str(tmp_path), format="df")
    assert meta is not None and set(meta["SeriesInstanceUID"]) == {
        s["SeriesInstanceUID"] for s in series[:2]}
    for row in series[:2]:
        folder = tmp_path / row["SeriesInstanceUID"]
        files = sorted(folder.glob("*.dcm"))
        assert [f.name for f in files][:1] == ["1-1.dcm"]
        assert (folder / "LICENSE").exists()
        expected = {i.md5 for i in truth[row["SeriesInstanceUID"]].instances.values()}
        assert {hashlib.md5(f.read_bytes()).hexdigest() for f in files} == expected
    assert simulator.stats()["requests"]["nbia-v4:getImage"] == 2
