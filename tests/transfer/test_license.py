"""The collection's LICENSE in the archive: atomic, rewritten only when the text changes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mirror.errors import StorageError
from mirror.transfer import license_path, store_license


def test_written_once_then_only_on_change(tmp_path: Path) -> None:
    path = store_license(tmp_path, "LIDC-IDRI", "CC BY 3.0\n")
    assert path == tmp_path / "LIDC-IDRI" / "LICENSE" == license_path(tmp_path, "LIDC-IDRI")
    assert path.read_text() == "CC BY 3.0\n"
    assert store_license(tmp_path, "LIDC-IDRI", "CC BY 3.0\n") is None
    assert store_license(tmp_path, "LIDC-IDRI", "CC BY 4.0\n") == path
    assert path.read_text() == "CC BY 4.0\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["LICENSE"]  # no temp files
    assert list((tmp_path / ".staging").iterdir()) == []


def test_collection_names_are_made_safe(tmp_path: Path) -> None:
    path = store_license(tmp_path, "../evil", "x")
    assert path is not None and path.parent.parent == tmp_path and path.read_text() == "x"


def test_a_directory_of_that_name_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "C" / "LICENSE").mkdir(parents=True)  # a patient called LICENSE
    assert store_license(tmp_path, "C", "text") is None
    assert (tmp_path / "C" / "LICENSE").is_dir()


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path) -> None:
    texts = [f"license {k}\n" * 1000 for k in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: store_license(tmp_path, "C", t), texts * 4))
    assert (tmp_path / "C" / "LICENSE").read_text() in texts
    assert sorted(p.name for p in (tmp_path / "C").iterdir()) == ["LICENSE"]
    assert list((tmp_path / ".staging").iterdir()) == []


def test_storage_errors_are_mapped(tmp_path: Path) -> None:
    (tmp_path / "C").write_text("a file where the collection directory belongs")
    with pytest.raises(StorageError, match="cannot store"):
        store_license(tmp_path, "C", "text")
