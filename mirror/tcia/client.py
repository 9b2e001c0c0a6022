"""The async TCIA client: one method per endpoint, the same typed answers in every dialect.

``async with TciaClient(settings.source) as client:`` opens one aiohttp session; the
dialect layer picks endpoint and parameter names, the parsing layer normalises records.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import date
from types import TracebackType
from typing import Any

from mirror.config.settings import SourceSettings
from mirror.domain import RejectedRow, RemotePatient, RemoteSeries, RemoteStudy, SeriesSize
from mirror.errors import UsageError
from mirror.retry import RetryPolicy
from mirror.tcia import dialects, fields, parsing, rows, streaming
from mirror.tcia.dialects import BINARY, Dialect
from mirror.tcia.streaming import Progress, Sink
from mirror.tcia.transport import Transport

_log = logging.getLogger(__name__)

Params = Mapping[str, str | None]


class TciaClient:
    """Async client for one configured TCIA source (see DESIGN.md ``[source]``).

    *retry_policy* defaults to ``RetryPolicy(retries=source.retries)``; tests pass a
    tiny backoff. Streaming methods never hold a whole body in memory.
    """

    def __init__(self, source: SourceSettings, *, retry_policy: RetryPolicy | None = None,
                 rng: random.Random | None = None,
                 on_response: Callable[[str, int | str], None] | None = None) -> None:
        self.source = source
        self.dialect: Dialect = dialects.get_dialect(source.api)
        self._transport = Transport(source, policy=retry_policy or
                                    RetryPolicy(retries=source.retries), rng=rng,
                                    on_response=on_response)

    def __repr__(self) -> str:
        return f"TciaClient(api={self.api!r}, base_url={self.source.base_url!r})"

    async def __aenter__(self) -> TciaClient:
        await self._transport.open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._transport.close()

    @property
    def api(self) -> str:
        return self.dialect.name

    @property
    def has_md5(self) -> bool:
        """True when the dialect has getImageWithMD5Hash (NBIA v1 and v4)."""
        return self.dialect.has_md5

    # -- plumbing ---------------------------------------------------------------------

    def _request(self, canonical: str, params: Params) -> tuple[str, str, dict[str, str]]:
        """(wire name, HTTP method, wire params) for a canonical endpoint."""
        wire = dialects.wire_name(self.dialect, canonical)
        method = "POST" if canonical in self.dialect.post else "GET"
        return wire, method, dialects.wire_params(self.dialect, canonical, params)

    def _url(self, canonical: str | None, wire: str) -> str:
        if canonical is None:
            return self._transport.url(wire)
        return dialects.endpoint_url(self.dialect, self._transport.base_url, canonical, wire)

    async def _records(self, canonical: str, params: Params) -> list[dict[str, Any]]:
        wire, method, wire_params = self._request(canonical, params)
        return await self._fetch_records(wire, method, wire_params,
                                         self._url(canonical, wire))

    async def _fetch_records(self, wire: str, method: str, params: Mapping[str, str],
                             url: str) -> list[dict[str, Any]]:
        if method == "POST":
            status, ctype, body = await self._transport.fetch(wire, method, url, data=params)
        else:
            status, ctype, body = await self._transport.fetch(wire, method, url, params=params)
        return parsing.decode_records(wire, status, ctype, body)

    async def _iter_records(self, canonical: str,
                            params: Params) -> AsyncIterator[dict[str, Any]]:
        wire, _, wire_params = self._request(canonical, params)
        url = self._url(canonical, wire)
        async for record in streaming.iter_records(self._transport, wire, url, wire_params):
            yield record

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

    # -- patients and studies -----------------------------------------------------------

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

    # -- series -------------------------------------------------------------------------

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

    async def get_md5_hash_for_image(self, sop_uid: str) -> str | None:
        """The server's MD5 of one instance (NBIA), or None where the dialect or the
        server has none (v3; an empty answer)."""
        if not self.dialect.supports(dialects.MD5_ENDPOINT):
            return None
        wire, method, params = self._request(dialects.MD5_ENDPOINT, {"SOPInstanceUID": sop_uid})
        url = self._url(dialects.MD5_ENDPOINT, wire)
        _, _, body = await self._transport.fetch(wire, method, url, params=params)
        return parsing.md5_text(body)

    @property
    def has_md5_hierarchy(self) -> bool:
        """True when the dialect has getMD5Hierarchy (NBIA v4 only)."""
        return self.dialect.supports("getMD5Hierarchy")

    async def md5_hierarchy(self, *, collection: str | None = None,
                            patient_id: str | None = None, study_uid: str | None = None,
                            series_uid: str | None = None) -> str:
        """The server's MD5 hierarchy hash of one level (NBIA v4 getMD5Hierarchy).

        Name one level: *series_uid*, *study_uid*, *patient_id* (which needs *collection*:
        the server filters patients by project) or *collection* alone. The answer is 32
        lowercase hex digits, or ``""`` when the server knows nothing (unknown UID, nothing
        visible, or no stored collection hash yet). A collection hash is cached by the
        server for up to a day: it can prove a change, never the absence of one.
        *collection* is sent only for the patient and collection levels (next to a study
        or series UID the server would answer the collection's hash instead).

        Raises UsageError on dialects without the endpoint (v3, nbia-v1; see
        :attr:`has_md5_hierarchy`), and ProtocolError when the body is not a hash.
        """
        canonical = "getMD5Hierarchy"
        form = dialects.md5_hierarchy_form(collection=collection, patient_id=patient_id,
                                           study_uid=study_uid, series_uid=series_uid)
        wire, method, params = self._request(canonical, form)
        url = self._url(canonical, wire)
        _, _, body = await self._transport.fetch(wire, method, url, data=params)
        return parsing.md5_hierarchy_text(body)

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

    # -- images -------------------------------------------------------------------------

    async def download_image(self, series_uid: str, sink: Sink, *, md5: bool = False,
                             new_file_names: bool = False,
                             progress: Progress | None = None) -> int:
        """Stream the series ZIP into *sink* (sync or async ``write``); bytes written.

        *md5* asks for md5hashes.csv as the ZIP's last entry: on NBIA v4 through
        ``getImage?IncludeMD5=Yes`` (the ZIP starts with the collection's LICENSE), on
        NBIA v1 through getImageWithMD5Hash (no LICENSE). On v4 it also asks for
        NewFileNames=Yes: in that branch an image whose stored digest is NULL gets an empty
        md5hashes.csv field, where the default names cut the ZIP short before it.
        *progress* is called with the size of each chunk.
        """
        if md5 and not self.has_md5:
            raise UsageError(f"the {self.api} API has no getImageWithMD5Hash endpoint")
        include_md5 = md5 and self.api == "nbia-v4"
        canonical = "getImageWithMD5Hash" if md5 and not include_md5 else "getImage"
        params: dict[str, str | None] = {"SeriesInstanceUID": series_uid}
        if (new_file_names or include_md5) and canonical == "getImage" and self.api != "v3":
            params["NewFileNames"] = "Yes"
        if include_md5:
            params["IncludeMD5"] = "Yes"
        return await self._download(canonical, params, sink, progress)

    async def download_single_image(self, series_uid: str, sop_uid: str, sink: Sink,
                                    progress: Progress | None = None) -> int:
        """Stream one DICOM instance into *sink*; bytes written."""
        params = {"SeriesInstanceUID": series_uid, "SOPInstanceUID": sop_uid}
        return await self._download("getSingleImage", params, sink, progress)

    async def _download(self, canonical: str, params: Params, sink: Sink,
                        progress: Progress | None) -> int:
        wire, _, wire_params = self._request(canonical, params)
        return await streaming.download(self._transport, wire, self._url(canonical, wire),
                                        wire_params, sink, progress)

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
