"""Subsets: which listed series a collection's ``[sync]`` filters keep, and the scope memory.

Matching is case-insensitive, as TCIA's MySQL collation matches; an empty key means
everything. Series outside the filter are never queued, never fetched and never retired
(they are still upstream). The filter last applied to each collection is remembered in
``<root>/.tcia-mirror/scope.json`` so that a changed filter forces a full listing: a
widened filter must find series no incremental poll would report again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mirror.config.settings import SubsetFilter, SyncSettings
from mirror.domain import RemoteSeries
from mirror.errors import StorageError

SCOPE_FILE = Path(".tcia-mirror") / "scope.json"


@dataclass(frozen=True)
class Scope:
    """One collection's effective filter; every value upper-cased, empty = everything."""

    modalities: frozenset[str] = frozenset()
    body_parts: frozenset[str] = frozenset()
    patients: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return not (self.modalities or self.body_parts or self.patients)

    def keeps(self, record: RemoteSeries) -> bool:
        return (_admits(self.modalities, record.modality)
                and _admits(self.body_parts, record.body_part)
                and _admits(self.patients, record.patient_id))

    def key(self) -> str:
        """A canonical text of the filter, to notice when it changes."""
        return json.dumps({"modalities": sorted(self.modalities),
                           "body_parts": sorted(self.body_parts),
                           "patients": sorted(self.patients)}, sort_keys=True)


EVERYTHING = Scope()


def _admits(wanted: frozenset[str], value: str | None) -> bool:
    return not wanted or (value is not None and value.strip().upper() in wanted)


def _upper(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().upper() for v in values if v.strip())


def scope_for(sync: SyncSettings, collection: str) -> Scope:
    """``[sync]`` filters, overridden key by key by ``[sync.filters."collection"]``."""
    own = next((f for name, f in sync.filters if name.upper() == collection.upper()),
               SubsetFilter())
    return Scope(
        modalities=_upper(sync.modalities if own.modalities is None else own.modalities),
        body_parts=_upper(sync.body_parts if own.body_parts is None else own.body_parts),
        patients=_upper(sync.patients if own.patients is None else own.patients))


def split(records: Iterable[RemoteSeries], scope: Scope,
          ) -> tuple[list[RemoteSeries], list[RemoteSeries]]:
    """(kept, filtered out)."""
    kept: list[RemoteSeries] = []
    dropped: list[RemoteSeries] = []
    for record in records:
        (kept if scope.keeps(record) else dropped).append(record)
    return kept, dropped


def remembered(root: Path, collection: str) -> str:
    """The key of the filter last applied to *collection* (everything when none was)."""
    try:
        data = json.loads((root / SCOPE_FILE).read_text())
    except FileNotFoundError:
        return EVERYTHING.key()
    except (OSError, ValueError):
        return ""  # unreadable: treat as changed, which costs one full listing
    value = data.get(collection) if isinstance(data, dict) else None
    return value if isinstance(value, str) else EVERYTHING.key()


def remember(root: Path, collection: str, scope: Scope) -> None:
    """Record *scope* as applied (atomically); no file is written while nothing is filtered."""
    from mirror.transfer.commit import write_atomic

    path = root / SCOPE_FILE
    if scope.everything and not path.exists():
        return
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    except OSError as exc:
        raise StorageError(f"cannot record the sync filter in {path}: {exc.strerror}") from exc
    data = data if isinstance(data, dict) else {}
    data[collection] = scope.key()
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True).encode())
