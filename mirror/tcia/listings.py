"""The client's listing endpoints: value lists, patients, studies, series and their metadata,
and raw records of any endpoint, parsed into the domain's types.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import date
from typing import Any

from mirror.domain import RejectedRow, RemotePatient, RemoteSeries, RemoteStudy, SeriesSize
from mirror.errors import UsageError
from mirror.tcia import dialects, fields, parsing, rows
from mirror.tcia.calls import Calls
from mirror.tcia.dialects import BINARY, Dialect

_log = logging.getLogger(__name__)


class Listings(Calls):
    """Endpoints that answer records (JSON or CSV), one method each."""

    # -- value lists --------------------------------------------------------------------

    async def get_collection_values(self) -> list[str]:
        return fields.value_list(await self._records("getCollectionValues", {}), "Collection")

    async def get_modality_values(self, collection: str | None = None,
                                  body_part: str | None = None) -> list[str]:
        records = await self._records("getModalityValues", {
            "Collection": collection, "BodyPartExamined": body_part})
        return fields.value_list(records, "Modality")

    async def get_body_part_values(self, collection: str | None = None,
                                   modality: str | None = None) -> list[str]:
        records = await self._records("getBodyPartValues", {
            "Collection": collection, "Modality": modality})
        return fields.value_list(records, "BodyPartExamined")

    async def get_manufacturer_values(self, collection: str | None = None,
                                      modality: str | None = None,
                                      body_part: str | None = None) -> list[str]:
        records = await self._records("getManufacturerValues", {
            "Collection": collection, "Modality": modality, "BodyPartExamined": body_part})
        return fields.value_list(records, "Manufacturer")

    async def get_patients(self, collection: str | None = None,
                           patient_id: str | None = None) -> list[RemotePatient]:
        records = await self._records("getPatient", {
            "Collection": collection, "PatientID": patient_id})
        return _patients(records, collection)

    async def patients_by_modality(self, collection: str, modality: str) -> list[RemotePatient]:
        records = await self._records("getPatientByCollectionAndModality", {
            "Collection": collection, "Modality": modality})
        return _patients(records, collection)

    async def get_patient_studies(self, collection: str | None = None,
                                  patient_id: str | None = None,
                                  study_uid: str | None = None) -> list[RemoteStudy]:
        records = await self._records("getPatientStudy", {
            "Collection": collection, "PatientID": patient_id, "StudyInstanceUID": study_uid})
        return _studies(records, collection)

    async def new_patients_in_collection(self, collection: str,
                                         since: date) -> list[RemotePatient]:
        """Patients with a series released on or after *since*."""
        key, value = dialects.since_param(self.dialect, since)
        records = await self._records("NewPatientsInCollection", {
            "Collection": collection, key: value})
        return _patients(records, collection)

    async def new_studies_in_patient_collection(self, collection: str, since: date,
                                                patient_id: str | None = None
                                                ) -> list[RemoteStudy]:
        """Studies with a series released on or after *since*."""
        key, value = dialects.since_param(self.dialect, since)
        records = await self._records("NewStudiesInPatientCollection", {
            "Collection": collection, key: value, "PatientID": patient_id})
        return _studies(records, collection)

    async def iter_series(self, collection: str | None = None, patient_id: str | None = None,
                          study_uid: str | None = None, series_uid: str | None = None,
                          modality: str | None = None, *,
                          on_reject: Callable[[RejectedRow], None] | None = None,
                          ) -> AsyncIterator[RemoteSeries]:
        """getSeries parsed as it streams in (NLST's listing is over 100 MB of JSON).

        Consume it to the end, or close it (``contextlib.aclosing``) when stopping early.
        A row without a valid SeriesInstanceUID is skipped with a warning (and handed to
        *on_reject*, to be counted); any other bad row comes with its ``problem`` set.
        """
        params = {"Collection": collection, "PatientID": patient_id,
                  "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
                  "Modality": modality}
        async for record in self._iter_records("getSeries", params):
            series = _series(rows.to_series(record, collection), on_reject)
            if series is not None:
                yield series

    async def get_series(self, collection: str | None = None, patient_id: str | None = None,
                         study_uid: str | None = None, series_uid: str | None = None,
                         modality: str | None = None, *,
                         on_reject: Callable[[RejectedRow], None] | None = None,
                         ) -> list[RemoteSeries]:
        return [s async for s in self.iter_series(collection, patient_id, study_uid,
                                                  series_uid, modality, on_reject=on_reject)]

    async def get_series_size(self, series_uid: str) -> SeriesSize:
        records = await self._records("getSeriesSize", {"SeriesInstanceUID": series_uid})
        return parsing.to_series_size(records)

    async def get_sop_instance_uids(self, series_uid: str) -> list[str]:
        records = await self._records("getSOPInstanceUIDs", {"SeriesInstanceUID": series_uid})
        return parsing.sop_uids(records)

    async def get_updated_series(self, since: date) -> list[RemoteSeries]:
        """Series released on or after *since*, every collection (NBIA only)."""
        key, value = dialects.updated_since_param(self.dialect, since)
        out = []
        async for record in self._iter_records("getUpdatedSeries", {key: value}):
            series = _series(rows.to_series(record), None)
            if series is not None:
                out.append(series)
        return out

    async def get_series_metadata(self, series_uid: str) -> dict[str, Any] | None:
        """The getSeriesMetaData row of one series (NBIA only); None when unknown."""
        records = await self._records("getSeriesMetaData", {"SeriesInstanceUID": series_uid})
        return records[0] if records else None

    async def get_series_metadata_batch(self, series_uids: Sequence[str]) -> list[RemoteSeries]:
        """NBIA v4: many series in ONE ``POST getSeriesMetadata`` (``list=`` comma-joined).

        Unknown UIDs are simply absent from the answer. Other dialects have no batch
        lookup (UsageError); callers fall back to getSeries.
        """
        if self.api != "nbia-v4":
            raise UsageError(f"the {self.api} API has no batched getSeriesMetadata")
        if not series_uids:
            return []
        records = await self._records("getSeriesMetaData",
                                      {"SeriesInstanceUID": ",".join(series_uids)})
        return [s for s in map(rows.to_series, records) if s is not None]

    async def get_contents_by_name(self, name: str) -> list[RemoteSeries]:
        """The series of a shared cart."""
        records = await self._records("getContentsByName", {"name": name})
        return [s for r in records if (s := _series(rows.to_series(r), None)) is not None]

    # -- raw ----------------------------------------------------------------------------

    async def query(self, endpoint: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Raw records of any endpoint, by its name in the configured dialect."""
        canonical = _canonical_of(self.dialect, endpoint)
        if canonical in BINARY:
            raise UsageError(f"{endpoint} returns files, not records; use sync to download")
        wire_params = dict(params)
        if canonical is not None:
            wire_params = {**dialects.wire_params(self.dialect, canonical, {}), **wire_params}
        method = "POST" if canonical in self.dialect.post else "GET"
        return await self._fetch_records(endpoint, method, wire_params,
                                         self._url(canonical, endpoint))


def _canonical_of(dialect: Dialect, wire: str) -> str | None:
    for canonical, name in dialect.endpoints.items():
        if name == wire:
            return canonical
    return None


def _series(parsed: RemoteSeries | RejectedRow | None,
            on_reject: Callable[[RejectedRow], None] | None) -> RemoteSeries | None:
    if isinstance(parsed, RejectedRow):
        _log.warning("getSeries row skipped: %s", parsed.reason)
        if on_reject is not None:
            on_reject(parsed)
        return None
    return parsed


def _patients(records: list[dict[str, Any]], collection: str | None) -> list[RemotePatient]:
    return [p for r in records if (p := rows.to_patient(r, collection)) is not None]


def _studies(records: list[dict[str, Any]], collection: str | None) -> list[RemoteStudy]:
    return [s for r in records if (s := rows.to_study(r, collection)) is not None]
