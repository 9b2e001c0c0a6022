"""Where a claimed series is stored, and the guard against storing over another series."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from mirror.errors import StorageError
from mirror.sync.seriesdir import final_dir, refuse_foreign_series
from tests.transfer.conftest import dicom_bytes

STUDY, SERIES, OTHER = "1.2.3.4", "1.2.3.4.5.67890", "1.2.3.4.9.12345"


def item(**changes: object) -> SimpleNamespace:
    fields = dict(collection="LIDC-IDRI", patient_id="LIDC-IDRI-0001", study_uid=STUDY,
                  series_uid=SERIES, local_path=None, series_number=3000923,
                  description="AXIAL 2.5/2.5", raw={"StudyDate": "01-18-2000",
                                                    "StudyDesc": "CHEST CT"})
    return SimpleNamespace(**{**fields, **changes})


def test_uid_layout(tmp_path: Path) -> None:
    assert final_dir(tmp_path, "uid", item()) == (
        tmp_path / "LIDC-IDRI" / "LIDC-IDRI-0001" / STUDY / SERIES)


def test_descriptive_layout_uses_dates_descriptions_and_uid_tails(tmp_path: Path) -> None:
    path = final_dir(tmp_path, "descriptive", item())
    assert path.relative_to(tmp_path).parts == (
        "LIDC-IDRI", "LIDC-IDRI-0001", "01-18-2000-CHEST CT-2.3.4", "3000923-AXIAL 2.5-2.5-67890")


def test_descriptive_series_keeps_the_path_it_was_stored_at(tmp_path: Path) -> None:
    stored = "LIDC-IDRI/LIDC-IDRI-0001/old-study/old-series"
    assert final_dir(tmp_path, "descriptive", item(local_path=stored)) == tmp_path / stored


def test_a_directory_holding_another_series_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "series"
    target.mkdir()
    (target / "1.2.3.4.9.12345.1.dcm").write_bytes(dicom_bytes("1.2.3.4.9.12345.1", OTHER,
                                                               STUDY))
    with pytest.raises(StorageError, match="collision"):
        refuse_foreign_series(target, SERIES)
    refuse_foreign_series(target, OTHER)  # its own series: fine
    refuse_foreign_series(tmp_path / "missing", SERIES)  # nothing there yet: fine
