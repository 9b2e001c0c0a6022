"""Table tests for the pure archive layout rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mirror.archive import layout
from mirror.archive.layout import DescriptiveInfo
from mirror.domain import PathName, Uid
from mirror.errors import InvalidUid, StorageError

ROOT = Path("/archive")

def _series_dir(root: Path, collection: str, patient: str, study: str, series: str,
                **kwargs: Any) -> Path:
    """layout.series_dir takes only validated values: build them as the wire parser does."""
    return layout.series_dir(root, PathName(collection), PathName(patient), Uid(study),
                             Uid(series), **kwargs)



@pytest.mark.parametrize("uid", [
    "1", "1.2.840.10008.5.1.4.1.1.2", "0.0", "1.3.6.1.4.1.14519.5.2.1.6279.6001.1",
    "1." + "2" * 62,  # exactly 64 characters
])
def test_valid_uids_pass(uid: str) -> None:
    assert layout.validate_uid(uid) == uid


@pytest.mark.parametrize("uid", [
    "", ".", "1.", ".1", "1..2", "1.2a", "../1", "1/2", "1.2\n", " 1.2", "1.2 ", "1.2\x00",
    "1." + "2" * 63,  # 65 characters
    "\u0661.\u0662",  # Arabic-Indic digits are digits to \d, not to DICOM
])
def test_invalid_uids_raise(uid: str) -> None:
    with pytest.raises(InvalidUid):
        layout.validate_uid(uid)


@pytest.mark.parametrize("name", [
    "LIDC-IDRI", "LIDC-IDRI-0001", "TCGA-02-0001", "NLST", "QIN LUNG CT", "Pseudo-PHI-DICOM",
    "C4KC-KiTS", "name.with.dots", "Ünïcödé-Patient", "a" * layout.MAX_COMPONENT_BYTES,
])
def test_ordinary_names_are_unchanged(name: str) -> None:
    assert layout.safe_component(name) == name


@pytest.mark.parametrize("name", [
    "..", ".", "", "../..", "a/b", "a\\b", "/etc", "a\x00b", "tab\there", "new\nline",
    ".hidden", ".staging", "x" * 300, "é" * 80, "\u2028sep", "\ud800", "ok~0123456789ab",
])
def test_hostile_names_become_one_safe_component(name: str) -> None:
    safe = layout.safe_component(name)
    assert safe != name
    assert safe not in ("", ".", "..") and not safe.startswith(".")
    assert "/" not in safe and "\\" not in safe
    assert all(ord(c) >= 32 and c not in "\u2028\u2029" for c in safe)
    assert len(safe.encode("utf-8")) <= layout.MAX_COMPONENT_BYTES
    assert layout.safe_component(name) == safe  # deterministic
    assert Path(safe).name == safe


def test_distinct_names_never_collide() -> None:
    names = ["a/b", "a\\b", "a_b", "a\x00b", "a\x01b", ".a", "_a", "..", "__", "x" * 200,
             "x" * 201, "x" * 199 + "y", "é" * 80, "é" * 81, "ok~0123456789ab", "ok"]
    mapped = {layout.safe_component(n) for n in names}
    assert len(mapped) == len(names)


def test_uid_layout_path() -> None:
    path = _series_dir(ROOT, "LIDC-IDRI", "LIDC-IDRI-0001", "1.2.3", "1.2.3.4")
    assert path == ROOT / "LIDC-IDRI" / "LIDC-IDRI-0001" / "1.2.3" / "1.2.3.4"


@pytest.mark.parametrize(("collection", "patient"), [
    ("../..", "p"), ("c", "../../etc"), ("/abs", "p"), ("c", "a/../../b"), ("..", ".."),
])
def test_hostile_collection_or_patient_stays_inside_root(collection: str, patient: str) -> None:
    path = _series_dir(ROOT, collection, patient, "1.2", "1.2.3")
    assert layout.is_inside(ROOT, path)
    assert path.relative_to(ROOT).parts[2:] == ("1.2", "1.2.3")
    assert len(path.relative_to(ROOT).parts) == 4


@pytest.mark.parametrize(("study", "series"), [("../1", "1.2"), ("1.2", "1.2/../3"), ("1.2", "")])
def test_series_dir_rejects_bad_uids(study: str, series: str) -> None:
    with pytest.raises(InvalidUid):
        _series_dir(ROOT, "C", "P", study, series)


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(StorageError):
        _series_dir(ROOT, "C", "P", "1.2", "1.3", layout="flat")


@pytest.mark.parametrize(("info", "study_dir", "series_dir"), [
    (DescriptiveInfo(date(2000, 1, 2), "S1", "CT CHEST", 3000923, "AXIAL/LUNG"),
     "01-02-2000-S1-CT CHEST-12345", "3000923-AXIAL-LUNG-67890"),
    (DescriptiveInfo(), "12345", "67890"),
    (DescriptiveInfo("01-02-2000", "null", "", 2.0, None), "01-02-2000-12345", "2-67890"),
    (DescriptiveInfo(study_description="d" * 80), "d" * 53 + "-12345", "67890"),
    (DescriptiveInfo(series_number="3000923.000000", series_description="..x"),
     "12345", "3000923.000000-..x-67890"),
])
def test_descriptive_layout(info: DescriptiveInfo, study_dir: str, series_dir: str) -> None:
    path = _series_dir(ROOT, "C", "P", "1.2.12345", "1.3.67890", layout="descriptive",
                             descriptive=info)
    assert path == ROOT / "C" / "P" / study_dir / series_dir


def test_descriptive_layout_sanitises_hostile_descriptions() -> None:
    info = DescriptiveInfo(study_description="..\\..\\evil\x00", series_description="\x7f")
    path = _series_dir(ROOT, "C", "P", "1.2", "1.3", layout="descriptive",
                             descriptive=info)
    rel = path.relative_to(ROOT).parts
    assert len(rel) == 4 and layout.is_inside(ROOT, path)
    assert all("\\" not in p and "\x00" not in p and "\x7f" not in p for p in rel)


def test_instance_name() -> None:
    assert layout.instance_name(Uid("1.2.3")) == "1.2.3.dcm"
    with pytest.raises(InvalidUid):
        layout.instance_name(Uid("../1.2"))


@pytest.mark.parametrize(("path", "inside"), [
    (ROOT, True), (ROOT / "a" / "b", True), (ROOT / ".." / "x", False), (Path("/archive2"), False),
    (Path("/"), False), (ROOT / "a" / ".." / ".." / "archive" / "b", True),
])
def test_is_inside(path: Path, inside: bool) -> None:
    assert layout.is_inside(ROOT, path) is inside


def test_new_staging_dirs_are_unique_and_under_staging(tmp_path: Path) -> None:
    first = layout.new_staging_dir(tmp_path, Uid("1.2.3"))
    second = layout.new_staging_dir(tmp_path, Uid("1.2.3"))
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == second.parent == layout.staging_root(tmp_path) == tmp_path / ".staging"
    assert first.name.startswith("1.2.3.")
    with pytest.raises(InvalidUid):
        layout.new_staging_dir(tmp_path, Uid("../x"))


@pytest.mark.parametrize("call", [
    lambda: layout.series_dir(ROOT, "C", PathName("P"), Uid("1.2"), Uid("1.3")),
    lambda: layout.series_dir(ROOT, PathName("C"), "P", Uid("1.2"), Uid("1.3")),
    lambda: layout.series_dir(ROOT, PathName("C"), PathName("P"), "1.2", Uid("1.3")),
    lambda: layout.series_dir(ROOT, PathName("C"), PathName("P"), Uid("1.2"), "1.3"),
    lambda: layout.instance_name("1.2.3"),
    lambda: layout.staging_part(ROOT, "../../x"),
    lambda: layout.new_staging_dir(ROOT, "1.2.3"),
    lambda: layout.study_component(DescriptiveInfo(), "1.2"),
], ids=["collection", "patient", "study", "series", "instance", "staging part",
        "staging dir", "study component"])
def test_layout_refuses_raw_server_strings(call: Any) -> None:
    """Structural: a path is built only from values validated where the wire is parsed."""
    with pytest.raises(TypeError, match="validated at the wire"):
        call()


def test_staging_part_is_inside_its_directory(tmp_path: Path) -> None:
    assert layout.staging_part(tmp_path, Uid("1.2.3")) == tmp_path / "1.2.3.part"
    with pytest.raises(InvalidUid):
        layout.staging_part(tmp_path, Uid("../../x"))


def test_descriptive_names_from_numbers_and_junk() -> None:
    info = DescriptiveInfo(study_id=42, study_description=["x"],  # type: ignore[arg-type]
                           series_description={"a": 1})  # type: ignore[arg-type]
    assert layout.study_component(info, Uid("1.2.12345")) == "42-12345"
    assert layout.series_component(info, Uid("1.3.67890")) == "67890"
