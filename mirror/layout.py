"""Pure path rules of the archive: UID validation, safe path components, the two layouts.

Nothing here reads the disk; only :func:`new_staging_dir` creates a directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from mirror.errors import InvalidUid, StorageError

#: DICOM UID syntax (PS3.5 §9.1); [0-9] rather than \d so that no non-ASCII digit passes.
UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")
UID_MAX_LEN = 64

#: Longest safe component in UTF-8 bytes (well below NAME_MAX = 255, leaving room for suffixes).
MAX_COMPONENT_BYTES = 100
_HASH_LEN = 12
#: A changed name always ends with this suffix and an unchanged one never does, so an
#: unchanged name cannot collide with a changed one; changed ones differ by their hash.
_SUFFIX_RE = re.compile(rf"~[0-9a-f]{{{_HASH_LEN}}}\Z")
#: Unicode categories that never go into a path: controls, surrogates (not encodable),
#: line and paragraph separators.
_BAD_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
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


def validate_uid(uid: str) -> str:
    """Return *uid* if it is a well-formed DICOM UID, else raise :class:`InvalidUid`."""
    if not isinstance(uid, str) or len(uid) > UID_MAX_LEN or not UID_RE.fullmatch(uid):
        raise InvalidUid(f"invalid DICOM UID {uid!r}")
    return uid


def safe_component(name: str) -> str:
    """Make *name* (a Collection or PatientID) safe as one path component.

    Ordinary names come back unchanged. Anything else (separators, NUL, controls, a
    leading dot, empty, too long) is cleaned, cut to :data:`MAX_COMPONENT_BYTES` and given a
    ``~<hash of the original>`` suffix, so two distinct names never map to the same component.
    """
    cleaned = "".join(_safe_char(c) for c in name)
    stripped = cleaned.lstrip(".")
    cleaned = "_" * (len(cleaned) - len(stripped)) + stripped
    encoded = cleaned.encode("utf-8")
    if (cleaned == name and cleaned and len(encoded) <= MAX_COMPONENT_BYTES
            and not _SUFFIX_RE.search(name)):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    room = MAX_COMPONENT_BYTES - _HASH_LEN - 1
    head = encoded[:room].decode("utf-8", "ignore")  # "ignore" drops a cut multibyte char
    return f"{head or '_'}~{digest}"


def _safe_char(c: str) -> str:
    if c in "/\\" or unicodedata.category(c) in _BAD_CATEGORIES:
        return "_"
    return c


def series_dir(root: Path, collection: str, patient_id: str, study_uid: str, series_uid: str,
               *, layout: str = "uid", descriptive: DescriptiveInfo | None = None) -> Path:
    """The directory of one series under *root*, in the *layout* the archive uses."""
    validate_uid(study_uid)
    validate_uid(series_uid)
    base = Path(root) / safe_component(collection) / safe_component(patient_id)
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


def study_component(info: DescriptiveInfo, study_uid: str) -> str:
    """``<StudyDate>-<StudyID>-<StudyDesc≤53>-<last 5 of StudyUID>``, empty parts left out."""
    parts = [_date_part(info.study_date), _text_part(info.study_id),
             _desc_part(info.study_description), validate_uid(study_uid)[-5:]]
    return safe_component("-".join(p for p in parts if p))


def series_component(info: DescriptiveInfo, series_uid: str) -> str:
    """``<SeriesNumber>-<SeriesDesc≤53>-<last 5 of SeriesUID>``, empty parts left out."""
    parts = [_number_part(info.series_number), _desc_part(info.series_description),
             validate_uid(series_uid)[-5:]]
    return safe_component("-".join(p for p in parts if p))


def _text_part(value: str | None) -> str:
    text = (value or "").strip()
    return "" if text == "null" else text


def _desc_part(value: str | None) -> str:
    return _text_part(value).replace("/", "-")[:_DESC_MAX]


def _date_part(value: date | datetime | str | None) -> str:
    if isinstance(value, date | datetime):
        return value.strftime("%m-%d-%Y")  # the retriever's MM-dd-yyyy
    return _text_part(value).replace("/", "-")


def _number_part(value: int | float | str | None) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _text_part(None if value is None else str(value))


def instance_name(sop_uid: str) -> str:
    """File name of one stored instance: ``<SOPInstanceUID>.dcm``."""
    return f"{validate_uid(sop_uid)}.dcm"


def is_inside(root: Path, path: Path) -> bool:
    """True if *path* is *root* or below it, judged lexically (no symlinks are followed)."""
    root_n = os.path.normpath(os.path.abspath(root))
    path_n = os.path.normpath(os.path.abspath(path))
    return os.path.commonpath([root_n, path_n]) == root_n


def staging_root(root: Path) -> Path:
    """Where downloads are staged before they are verified and renamed into place."""
    return Path(root) / STAGING


def new_staging_dir(root: Path, series_uid: str) -> Path:
    """Create and return a fresh staging directory for one attempt at *series_uid*."""
    base = staging_root(root)
    name = validate_uid(series_uid)
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
