"""Atomic commit of staged series, staging cleanup, and the hashing download sink."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from mirror.archive import layout
from mirror.domain import PathName, Uid
from mirror.errors import StorageError
from mirror.transfer import HashingFile, clear_staging, commit_series_dir, link_or_copy
from mirror.transfer import commit as commit_mod


def _series_dir(root: Path, collection: str, patient: str, study: str, series: str,
                **kwargs: Any) -> Path:
    """layout.series_dir takes only validated values: build them as the wire parser does."""
    return layout.series_dir(root, PathName(collection), PathName(patient), Uid(study),
                             Uid(series), **kwargs)



def _stage(root: Path, files: dict[str, bytes]) -> Path:
    staging = layout.new_staging_dir(root, Uid("1.2.3")) / "files"
    staging.mkdir()
    for name, data in files.items():
        (staging / name).write_bytes(data)
    return staging


def _tree(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.fixture(params=["exchange", "two-renames"])
def swap_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "two-renames":
        monkeypatch.setattr(commit_mod, "_renameat2", lambda: None)
    elif commit_mod._renameat2() is None:
        pytest.skip("renameat2 is not available here")
    return str(request.param)


def test_commit_new_series_creates_parents(tmp_path: Path) -> None:
    staging = _stage(tmp_path, {"1.2.3.1.dcm": b"one", "1.2.3.2.dcm": b"two"})
    final = _series_dir(tmp_path, "C", "P", "1.2", "1.2.3")

    commit_series_dir(staging, final)

    assert _tree(final) == {"1.2.3.1.dcm": b"one", "1.2.3.2.dcm": b"two"}
    assert not staging.exists()


def test_commit_replaces_an_old_version_whole(tmp_path: Path, swap_mode: str) -> None:
    final = _series_dir(tmp_path, "C", "P", "1.2", "1.2.3")
    commit_series_dir(_stage(tmp_path, {"keep.dcm": b"k", "gone.dcm": b"g"}), final)
    staging = _stage(tmp_path, {})
    link_or_copy(final / "keep.dcm", staging / "keep.dcm")
    (staging / "new.dcm").write_bytes(b"n")

    commit_series_dir(staging, final)

    assert _tree(final) == {"keep.dcm": b"k", "new.dcm": b"n"}
    assert not staging.exists()
    leftovers = [p for p in staging.parent.iterdir()]  # the old version is gone too
    assert leftovers == [], (swap_mode, leftovers)


def test_failed_swap_puts_the_old_version_back(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    final = _series_dir(tmp_path, "C", "P", "1.2", "1.2.3")
    commit_series_dir(_stage(tmp_path, {"old.dcm": b"o"}), final)
    staging = _stage(tmp_path, {"new.dcm": b"n"})
    monkeypatch.setattr(commit_mod, "_renameat2", lambda: None)
    real_rename = os.rename

    def rename(src: object, dst: object) -> None:
        if Path(str(src)) == staging:
            raise OSError(errno.EIO, "injected")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(StorageError, match="injected"):
        commit_series_dir(staging, final)
    assert _tree(final) == {"old.dcm": b"o"}


def test_exchange_swaps_atomically_when_available(tmp_path: Path) -> None:
    if commit_mod._renameat2() is None:
        pytest.skip("renameat2 is not available here")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_bytes(b"a")
    (b / "x").write_bytes(b"b")
    assert commit_mod._exchange(a, b)
    assert (a / "x").read_bytes() == b"b" and (b / "x").read_bytes() == b"a"


def test_commit_failure_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        commit_series_dir(tmp_path / "missing", tmp_path / "final")


def test_link_or_copy_links_when_it_can(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"data")
    link_or_copy(src, dst)
    assert dst.read_bytes() == b"data" and os.path.samefile(src, dst)
    with pytest.raises(StorageError):
        link_or_copy(src, dst)


def test_link_or_copy_copies_across_devices(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"data")
    link_or_copy(src, dst)
    assert dst.read_bytes() == b"data" and not os.path.samefile(src, dst)


def test_clear_staging_removes_everything_left_behind(tmp_path: Path) -> None:
    _stage(tmp_path, {"a.dcm": b"a"})
    layout.new_staging_dir(tmp_path, Uid("1.2.4"))
    (layout.staging_root(tmp_path) / "stray.part").write_bytes(b"x")
    assert clear_staging(tmp_path) == 3
    assert list(layout.staging_root(tmp_path).iterdir()) == []
    assert clear_staging(tmp_path / "no-archive-yet") == 0


def test_clear_staging_keeps_recent_entries_when_asked(tmp_path: Path) -> None:
    old = layout.new_staging_dir(tmp_path, Uid("1.2.3"))
    fresh = layout.new_staging_dir(tmp_path, Uid("1.2.4"))
    os.utime(old, (1_000_000, 1_000_000))
    assert clear_staging(tmp_path, older_than=3600) == 1
    assert not old.exists() and fresh.exists()


def test_clear_staging_refuses_a_symlinked_staging_dir(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_bytes(b"p")
    (tmp_path / "root").mkdir()
    layout.staging_root(tmp_path / "root").symlink_to(victim)
    with pytest.raises(StorageError):
        clear_staging(tmp_path / "root")
    assert (victim / "precious").exists()


def test_hashing_file_tracks_size_and_md5(tmp_path: Path) -> None:
    chunks = [os.urandom(256 * 1024) for _ in range(3)] + [b"", b"tail"]
    with HashingFile(tmp_path / "dl.part") as sink:
        for chunk in chunks:
            assert sink.write(chunk) == len(chunk)
        sink.fsync()
    data = b"".join(chunks)
    assert sink.closed and sink.size == len(data)
    assert sink.md5 == hashlib.md5(data).hexdigest()
    assert (tmp_path / "dl.part").read_bytes() == data
    sink.close(fsync=True)  # idempotent


def test_hashing_file_restart_empties_it(tmp_path: Path) -> None:
    with HashingFile(tmp_path / "dl.part") as sink:
        sink.write(b"partial body, cut off")
        sink.restart()
        sink.write(b"whole")
    assert (tmp_path / "dl.part").read_bytes() == b"whole"
    assert (sink.size, sink.md5) == (5, hashlib.md5(b"whole").hexdigest())


def test_hashing_file_discard_and_no_hash(tmp_path: Path) -> None:
    sink = HashingFile(tmp_path / "dl.part", hashing=False)
    sink.write(memoryview(b"abc"))  # type: ignore[arg-type]
    assert (sink.size, sink.md5) == (3, "")
    sink.discard()
    assert not (tmp_path / "dl.part").exists()
    with pytest.raises(StorageError):
        HashingFile(tmp_path / "missing-dir" / "dl.part")


def test_a_batch_is_durable_before_it_returns_and_shares_its_directory_fsyncs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_rename = commit_mod._fsync_path, os.rename

    def fsync(item: tuple[str, bool]) -> OSError | None:
        events.append(("fsync", item[0]))
        return real_fsync(item)

    def rename(src: object, dst: object) -> None:
        events.append(("rename", str(dst)))
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(commit_mod, "_fsync_path", fsync)
    monkeypatch.setattr(os, "rename", rename)
    finals = [_series_dir(tmp_path, "C", "P", "1.2", f"1.2.3.{n}") for n in (1, 2)]
    stagings = [_stage(tmp_path, {f"{n}.dcm": b"x" * n}) for n in (1, 2)]

    assert commit_mod.commit_series_dirs(list(zip(stagings, finals, strict=True))) == [None,
                                                                                       None]
    assert [_tree(f) for f in finals] == [{"1.dcm": b"x"}, {"2.dcm": b"xx"}]
    synced = [path for kind, path in events if kind == "fsync"]
    first_rename = events.index(next(e for e in events if e[0] == "rename"))
    before = {path for kind, path in events[:first_rename] if kind == "fsync"}
    # every file and staging dir before any rename ...
    assert before == {str(s / f"{n}.dcm") for n, s in zip((1, 2), stagings, strict=True)} | {
        str(s) for s in stagings}
    # ... then every directory whose entries changed, once: the new parents' parents,
    # the (shared) final parent, each staging parent
    after = synced[len(before):]
    study = finals[0].parent
    assert sorted(after) == sorted({str(study), str(study.parent), str(study.parent.parent),
                                    str(tmp_path), *(str(s.parent) for s in stagings)})
    assert all(kind == "fsync" for kind, _ in events[events.index(("fsync", after[0])):])


def test_one_bad_move_in_a_batch_fails_alone(tmp_path: Path) -> None:
    good = _stage(tmp_path, {"g.dcm": b"g"})
    finals = [_series_dir(tmp_path, "C", "P", "1.2", f"1.2.3.{n}") for n in (1, 2)]
    errors = commit_mod.commit_series_dirs([(tmp_path / "missing", finals[0]),
                                            (good, finals[1])])
    assert isinstance(errors[0], StorageError) and errors[1] is None
    assert not finals[0].exists() and _tree(finals[1]) == {"g.dcm": b"g"}
