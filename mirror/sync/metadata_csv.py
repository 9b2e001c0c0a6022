"""``<root>/<Collection>/metadata.csv``: the NBIA Data Retriever's download ledger, per collection.

One row per DONE series, the Retriever's 17 columns with its exact names and order, built
from the catalog; ``File Location`` is the series directory relative to the archive root
in the Retriever's ``./Collection/...`` style. Rewritten atomically (temp file, fsync,
rename) so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Protocol

import anyio

from mirror import logs
from mirror.archive import layout
from mirror.archive.verify import load_pydicom
from mirror.catalog.records import SeriesRow
from mirror.dicomuids import read_sop_class
from mirror.domain import SeriesState
from mirror.tcia.extras import listing_extras
from mirror.transfer.commit import write_atomic

FILENAME = "metadata.csv"
#: Bytes read from a file for its SOP Class UID (the header's first elements).
_HEAD = 16 * 1024
#: The NBIA Data Retriever's header, verbatim (names and order).
COLUMNS = (
    "Series UID", "Collection", "3rd Party Analysis", "Data Description URI", "Subject ID",
    "Study UID", "Study Description", "Study Date", "Series Description", "Manufacturer",
    "Modality", "SOP Class Name", "SOP Class UID", "Number of Images", "File Size",
    "File Location", "Download Timestamp",
)


def decimal_size(n: int | None) -> str:
    """The Retriever's File Size: decimal units, two decimals ("163.31 KB", "117.84 MB")."""
    if n is None:
        return ""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.2f} {unit}"


def sop_class_name(uid: str | None) -> str:
    """pydicom's name for a SOP Class UID ("" when it has none), without importing pydicom.

    Importing pydicom (and numpy with it) cost a one-shot sync more CPU than writing
    metadata.csv; its UID table is a plain data module, read alone. Should that module
    move in some pydicom release, pydicom itself answers.
    """
    if not uid:
        return ""
    table = _uid_names()
    if table is not None:
        entry = table.get(uid)
        return entry[0] if entry and entry[0] != uid else ""
    name = load_pydicom().uid.UID(uid).name
    return "" if name == uid else name


@functools.cache
def _uid_names() -> dict[str, tuple[str, ...]] | None:
    """pydicom's ``UID_dictionary`` (pydicom/_uid_dict.py), loaded without the package."""
    try:
        spec = importlib.util.find_spec("pydicom")  # a top-level lookup imports nothing
        where = spec.submodule_search_locations if spec else None
        if not where:
            return None
        path = Path(next(iter(where))) / "_uid_dict.py"
        data = importlib.util.spec_from_file_location("_mirror_pydicom_uid_dict", path)
        if data is None or data.loader is None or not path.is_file():
            return None
        module = importlib.util.module_from_spec(data)
        data.loader.exec_module(module)
        table = module.UID_dictionary
    except Exception:  # any surprise: pydicom proper answers instead
        return None
    return table if isinstance(table, dict) else None


def row(series: SeriesRow, sop_class_uid: str | None = None) -> tuple[str, ...]:
    """One metadata.csv row for a committed series (pure); *sop_class_uid* stands in
    for the series' own when the catalog had none."""
    sop_class = series.sop_class_uid or sop_class_uid
    extras = listing_extras(series.raw or {})
    when = series.verified_at
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] if when else ""
    location = f"./{Path(series.local_path).as_posix()}" if series.local_path else ""
    count = series.local_instance_count if series.local_instance_count is not None \
        else series.image_count
    return (
        series.series_uid, series.collection, extras.third_party or "",
        extras.data_description_uri or "", series.patient_id, series.study_uid,
        extras.study_description or "",
        extras.study_date.strftime("%m-%d-%Y") if extras.study_date else "",
        series.description or "", extras.manufacturer or "", series.modality or "",
        sop_class_name(sop_class), sop_class or "",
        "" if count is None else str(count),
        decimal_size(series.local_bytes if series.local_bytes is not None
                     else series.file_size),
        location, stamp,
    )


def render(rows: Iterable[tuple[str, ...]]) -> bytes:
    """Header plus rows, ``\\n`` line ends, quoted only where a value needs it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")



class SeriesSource(Protocol):
    """The catalog as metadata.csv reads it (the real one: :class:`mirror.catalog.Catalog`)."""

    def iter_series(self, *, states: Sequence[SeriesState],
                    collections: Sequence[str] | None = None,
                    batch: int = 1000) -> AsyncIterator[SeriesRow]: ...
    async def first_instance_paths(self, series_uids: Sequence[str]) -> dict[str, str]: ...
    async def set_sop_classes(self, values: Mapping[str, str]) -> None: ...


def collection_path(root: Path, collection: str) -> Path:
    return root / layout.safe_component(collection) / FILENAME


async def refresh(catalog: SeriesSource, root: Path, collections: Sequence[str], *,
                  changed: Iterable[str]) -> list[str]:
    """Rewrite metadata.csv for the *changed* collections and those that have none yet.

    Returns the collections written. A collection without a directory is skipped.
    """
    dirty = set(changed)
    written = []
    for name in collections:
        path = collection_path(root, name)
        if not path.parent.is_dir() or (name not in dirty and path.exists()):
            continue
        await write_collection(catalog, root, name)
        written.append(name)
    return written


async def write_collection(catalog: SeriesSource, root: Path, collection: str) -> Path:
    """Write one collection's metadata.csv from the catalog's DONE series."""
    rows = [r async for r in catalog.iter_series(states=[SeriesState.DONE],
                                                 collections=[collection])]
    found = await _missing_sop_classes(catalog, root, rows)
    rows.sort(key=lambda r: (r.patient_id, r.study_uid, r.series_uid))
    data = render(row(r, found.get(r.series_uid)) for r in rows)
    path = collection_path(root, collection)
    # the temporary file lives in <root>/.staging like every other: nothing partial is
    # ever visible in the archive proper
    await anyio.to_thread.run_sync(
        lambda: write_atomic(path, data, tmp_dir=root / layout.STAGING))
    logs.get().info("metadata.csv written", collection=collection, series=len(rows),
                    path=str(path))
    return path


async def _missing_sop_classes(catalog: SeriesSource, root: Path,
                               rows: list[SeriesRow]) -> dict[str, str]:
    """Series UID -> SOP Class UID for the series the catalog has none for, read from
    one stored file of each and recorded in the catalog, once.

    One catalog query for all the paths, one thread hop for all the reads; each read
    takes the file's first bytes and walks the header (pydicom only for odd files).
    """
    missing = [r.series_uid for r in rows if not r.sop_class_uid]
    if not missing:
        return {}
    paths = await catalog.first_instance_paths(missing)
    found = await anyio.to_thread.run_sync(_read_sop_classes, root, paths)
    if found:
        await catalog.set_sop_classes(found)
    return found


def _read_sop_classes(root: Path, paths: Mapping[str, str]) -> dict[str, str]:
    """SOP Class UIDs read from the files at *paths* (relative to *root*, never outside)."""
    found = {}
    base = os.fspath(root)
    for uid, rel in paths.items():
        path = os.path.join(base, rel)
        if not layout.is_inside(root, path):  # type: ignore[arg-type] # str is fine
            continue  # a catalog path leading out of the archive is never read
        if (value := _read_sop_class(path)) is not None:
            found[uid] = value
    return found


def _read_sop_class(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
        value = read_sop_class(head)
        if value is None:  # an unusual header: pydicom decides
            ds = load_pydicom().dcmread(path, stop_before_pixels=True,
                                        specific_tags=["SOPClassUID"])
            value = str(ds.get("SOPClassUID", "") or "").strip()
    except Exception:  # a damaged file is verify's business; the column stays empty
        return None
    return value if layout.UID_RE.fullmatch(value) and len(value) <= 64 else None
