"""Pure selections over a catalog snapshot, shared by all dialects (filters, date semantics).

Matching is case-insensitive everywhere (TCIA's MySQL collation); an empty filter value
matches nothing, an absent one matches everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from mirror.simulator.catalog import Catalog
from mirror.simulator.model import Patient, Series, Study


def _match(value: str | None, wanted: str | None) -> bool:
    if wanted is None:
        return True
    return value is not None and value.upper() == wanted.upper()


def select_series(cat: Catalog, f: dict[str, str | None]) -> list[Series]:
    return [s for s in cat.series.values()
            if _match(s.collection, f.get("Collection"))
            and _match(s.patient_id, f.get("PatientID"))
            and _match(s.study_uid, f.get("StudyInstanceUID"))
            and _match(s.series_uid, f.get("SeriesInstanceUID"))
            and _match(s.modality, f.get("Modality"))
            and _match(s.body_part, f.get("BodyPartExamined"))
            and _match(s.manufacturer, f.get("Manufacturer"))
            and _match(s.model, f.get("ManufacturerModelName"))]


def distinct(values: Iterable[str | None], upper: bool = False) -> list[str | None]:
    """Distinct values ordered by ``upper(value)``; NULL first, as MySQL sorts it."""
    seen = {(v.upper() if upper else v) if v is not None else None for v in values}
    return sorted(seen, key=lambda v: (v is not None, (v or "").upper()))


def collections(cat: Catalog) -> list[str]:
    return sorted({s.collection for s in cat.series.values()}, key=str.upper)


def patients(cat: Catalog, collection: str | None, patient_id: str | None) -> list[Patient]:
    return [p for p in cat.visible_patients()
            if _match(p.collection, collection) and _match(p.patient_id, patient_id)]


def patients_by_modality(cat: Catalog, collection: str, modality: str) -> list[Patient]:
    ids = {s.patient_id for s in select_series(cat, {"Collection": collection,
                                                    "Modality": modality})}
    return [p for p in cat.visible_patients() if p.patient_id in ids]


def studies(cat: Catalog, f: dict[str, str | None],
            keep: Callable[[Series], bool] = lambda s: True) -> list[tuple[Study, int]]:
    """Studies with the number of their visible series that pass *keep*."""
    out = []
    for st in cat.visible_studies():
        if not (_match(st.collection, f.get("Collection"))
                and _match(st.patient_id, f.get("PatientID"))
                and _match(st.study_uid, f.get("StudyInstanceUID"))):
            continue
        n = sum(1 for s in cat.series_by_study[st.study_uid] if keep(s))
        if n:
            out.append((st, n))
    return out


def released_after(since: date, inclusive: bool) -> Callable[[Series], bool]:
    """v1 compares ``date_released > :date`` (strict); v4 (and our v3) use ``>=``."""
    if inclusive:
        return lambda s: s.date_released >= since
    return lambda s: s.date_released > since


def new_patients(cat: Catalog, collection: str, keep: Callable[[Series], bool]) -> list[Patient]:
    ids = {s.patient_id for s in cat.series.values()
           if _match(s.collection, collection) and keep(s)}
    return [p for p in cat.visible_patients() if p.patient_id in ids]


def contents_by_name(cat: Catalog, name: str) -> list[Series]:
    uids = cat.shared_lists.get(name, ())
    return [cat.series[u] for u in uids if u in cat.series]
