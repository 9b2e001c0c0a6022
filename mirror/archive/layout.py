"""Pure path rules of the archive: the two layouts, instance and staging names.

Every function here takes :class:`~mirror.domain.Uid` and :class:`~mirror.domain.PathName`
values, never raw server text (a plain str is a TypeError), and refuses any path that
would leave the archive root. Nothing here reads the disk; only :func:`new_staging_dir`
creates a directory.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from mirror.domain import (  # noqa: F401  (constants and safe_component re-exported)
    MAX_COMPONENT_BYTES,
    UID_MAX_LEN,
    UID_RE,
    PathName,
    Uid,
    safe_component,
)
from mirror.errors import StorageError

_DESC_MAX = 53  # the NBIA Data Retriever cuts descriptions to 53 characters

STAGING = ".staging"
LAYOUTS = ("uid", "descriptive")


@dataclass(frozen=True, slots=True)
class DescriptiveInfo:
    """What the ``descriptive`` layout needs beyond the UIDs (all optional)."""

    study_date: date | datetime | str | None = None
    study_id: str | None = None
    study_description: str | None = None
    series_number: int | float | str | None = None
    series_description: str | None = None


def validate_uid(uid: str) -> Uid:
    """``Uid(uid)``: the UID if well-formed, else :class:`~mirror.errors.InvalidUid`."""
    return Uid(uid)


def _require(kind: type, value: object, what: str) -> None:
    """The structural guard: a path is only ever built from validated values."""
    if not isinstance(value, kind):
        raise TypeError(f"{what} must be a {kind.__name__} (validated at the wire), "
                        f"not {type(value).__name__}")


def series_dir(root: Path, collection: PathName, patient_id: PathName, study_uid: Uid,
               series_uid: Uid, *, layout: str = "uid",
               descriptive: DescriptiveInfo | None = None) -> Path:
    """The directory of one series under *root*, in the *layout* the archive uses."""
    _require(PathName, collection, "collection")
    _require(PathName, patient_id, "patient_id")
    _require(Uid, study_uid, "study_uid")
    _require(Uid, series_uid, "series_uid")
    base = Path(root) / collection / patient_id
    if layout == "uid":
        path = base / study_uid / series_uid
    elif layout == "descriptive":
        info = descriptive or DescriptiveInfo()
        path = base / study_component(info, study_uid) / series_component(info, series_uid)
    else:
        raise StorageError(f"unknown archive layout {layout!r} (expected one of {LAYOUTS})")
    if not is_inside(Path(root), path):
        raise StorageError(f"refusing a path outside the archive root: {path}")
    return path


def study_component(info: DescriptiveInfo, study_uid: Uid) -> PathName:
    """``<StudyDate>-<StudyID>-<StudyDesc≤53>-<last 5 of StudyUID>``, empty parts left out."""
    _require(Uid, study_uid, "study_uid")
    parts = [_date_part(info.study_date), _text_part(info.study_id),
             _desc_part(info.study_description), study_uid[-5:]]
    return PathName("-".join(p for p in parts if p))


def series_component(info: DescriptiveInfo, series_uid: Uid) -> PathName:
    """``<SeriesNumber>-<SeriesDesc≤53>-<last 5 of SeriesUID>``, empty parts left out."""
    _require(Uid, series_uid, "series_uid")
    parts = [_number_part(info.series_number), _desc_part(info.series_description),
             series_uid[-5:]]
    return PathName("-".join(p for p in parts if p))


def _text_part(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    text = value.strip() if isinstance(value, str) else ""  # a list or dict is no name
    return "" if text == "null" else text


def _desc_part(value: str | None) -> str:
    return _text_part(value).replace("/", "-")[:_DESC_MAX]


def _date_part(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.strftime("%m-%d-%Y")  # the retriever's MM-dd-yyyy
    return _text_part(value).replace("/", "-")


def _number_part(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        value = int(value)
    return _text_part(None if value is None else str(value))


def instance_name(sop_uid: Uid) -> str:
    """File name of one stored instance: ``<SOPInstanceUID>.dcm``."""
    _require(Uid, sop_uid, "sop_uid")
    return f"{sop_uid}.dcm"


def is_inside(root: Path, path: Path) -> bool:
    """True if *path* is *root* or below it, judged lexically (no symlinks are followed)."""
    root_n = os.path.normpath(os.path.abspath(root))
    path_n = os.path.normpath(os.path.abspath(path))
    return os.path.commonpath([root_n, path_n]) == root_n


def staging_root(root: Path) -> Path:
    """Where downloads are staged before they are verified and renamed into place."""
    return Path(root) / STAGING


def staging_part(staging_dir: Path, sop_uid: Uid) -> Path:
    """Where one getSingleImage download of *sop_uid* is staged: ``<SOP>.part``."""
    _require(Uid, sop_uid, "sop_uid")
    path = Path(staging_dir) / f"{sop_uid}.part"
    if not is_inside(staging_dir, path):  # cannot happen with a Uid; the last line all the same
        raise StorageError(f"refusing a staging path outside {staging_dir}: {path}")
    return path


def new_staging_dir(root: Path, series_uid: Uid) -> Path:
    """Create and return a fresh staging directory for one attempt at *series_uid*."""
    _require(Uid, series_uid, "series_uid")
    base = staging_root(root)
    name = series_uid
    while True:  # a clash of 48 random bits is practically impossible, but never reuse a dir
        path = base / f"{name}.{secrets.token_hex(6)}"
        try:
            base.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot create staging directory {path}: {exc}") from exc
        return path
