"""The study fields of a series' stored listing record (``raw``), by their wire names.

The catalog keeps each series' listing record as the server sent it; the ``descriptive``
archive layout names directories after its study date, ID and description. Which NBIA
field holds which (``StudyDesc`` in some dialects, ``StudyDescription`` in others) is
wire knowledge, so it is read here and nowhere outside :mod:`mirror.tcia`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from mirror.tcia.dates import to_date


@dataclass(frozen=True, slots=True)
class StudyFields:
    """A series' study date, ID and description as listed (each None when absent)."""

    study_date: date | None = None
    study_id: str | None = None
    study_description: str | None = None


def study_fields(raw: Mapping[str, Any] | None) -> StudyFields:
    """The study fields of a stored listing record (JSON values, passed on unchanged:
    the layout sanitises every name it builds from them)."""
    raw = raw or {}
    return StudyFields(study_date=to_date(raw.get("StudyDate")), study_id=raw.get("StudyID"),
                       study_description=raw.get("StudyDesc") or raw.get("StudyDescription"))
