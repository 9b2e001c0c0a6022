"""Listing records for catalog tests."""

from __future__ import annotations

from datetime import UTC, datetime

from mirror.domain import RemoteSeries

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def remote(i: int, *, collection: str = "COLL-A", **changes: object) -> RemoteSeries:
    """Series number *i*: three series per study, three studies per patient."""
    fields: dict[str, object] = {
        "series_uid": f"1.2.826.0.1.{i}", "study_uid": f"1.2.826.0.2.{i // 3}",
        "patient_id": f"{collection}-P{i // 9:04d}", "collection": collection,
        "modality": "CT", "image_count": 10 + i % 5, "file_size": 1000 * (i + 1),
        "timestamp": T0, "raw": {"SeriesInstanceUID": f"1.2.826.0.1.{i}"},
    }
    fields.update(changes)
    return RemoteSeries(**fields)  # type: ignore[arg-type]
