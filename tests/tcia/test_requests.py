"""What each client method puts on the wire, per dialect (paths, parameters, methods)."""

from __future__ import annotations

from datetime import date

import pytest
from aiohttp import web

from mirror.errors import UsageError
from tests.tcia.conftest import client

SINCE = date(2024, 3, 1)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    async def handler(self, request: web.Request) -> web.Response:
        fields = dict(request.query)
        if request.method == "POST":
            fields.update(dict(await request.post()))
        self.calls.append((request.method, request.match_info["name"], fields))
        return web.Response(body=b"")


CALLS = [
    ("get_patients", ("C", "P1"), {
        "v3": ("getPatient", {"Collection": "C", "PatientID": "P1", "format": "json"}),
        "nbia-v1": ("getPatient", {"Collection": "C", "PatientId": "P1"}),
        "nbia-v4": ("getPatient", {"Collection": "C", "PatientId": "P1"})}),
    ("patients_by_modality", ("C", "CT"), {
        "v3": ("PatientsByModality", {"Collection": "C", "Modality": "CT", "format": "json"}),
        "nbia-v1": ("getPatientByCollectionAndModality", {"Collection": "C", "Modality": "CT"}),
        "nbia-v4": ("getPatientByCollectionAndModality", {"Collection": "C", "Modality": "CT"})}),
    ("new_patients_in_collection", ("C", SINCE), {
        "v3": ("NewPatientsInCollection", {"Collection": "C", "Date": "2024-02-29",
                                           "format": "json"}),
        "nbia-v1": ("NewPatientsInCollection", {"Collection": "C", "Date": "2024/02/29"}),
        "nbia-v4": ("NewPatientsInCollection", {"Collection": "C", "fromDate": "03-01-2024"})}),
    ("new_studies_in_patient_collection", ("C", SINCE, "P1"), {
        "v3": ("NewStudiesInPatientCollection", {"Collection": "C", "Date": "2024-02-29",
                                                 "PatientID": "P1", "format": "json"}),
        "nbia-v1": ("NewStudiesInPatientCollection", {"Collection": "C", "Date": "2024/02/29",
                                                      "PatientID": "P1"}),
        "nbia-v4": ("NewStudiesInPatientCollection", {"Collection": "C",
                                                      "fromDate": "03-01-2024",
                                                      "PatientID": "P1"})}),
    ("get_contents_by_name", ("cart",), {
        # v3 never had shared lists (tcia-api-v4.md section 8): refused before the wire.
        "nbia-v1": ("getContentsByName", {"name": "cart"}),
        "nbia-v4": ("getContentsByName", {"name": "cart"})}),
    ("get_series", ("C", None, "1.2"), {
        "v3": ("getSeries", {"Collection": "C", "StudyInstanceUID": "1.2", "format": "json"}),
        "nbia-v1": ("getSeries", {"Collection": "C", "StudyInstanceUID": "1.2"}),
        "nbia-v4": ("getSeries", {"Collection": "C", "StudyInstanceUID": "1.2"})}),
    ("get_series_metadata", ("1.2.3",), {
        "nbia-v1": ("getSeriesMetaData", {"SeriesInstanceUID": "1.2.3"}),
        "nbia-v4": ("getSeriesMetadata", {"list": "1.2.3", "format": "json"})}),
    ("get_updated_series", (SINCE,), {
        "nbia-v1": ("getUpdatedSeries", {"fromDate": "29/02/2024"}),
        "nbia-v4": ("getUpdatedSeries", {"fromDate": "02-29-2024"})}),
]


@pytest.mark.parametrize("api", ["v3", "nbia-v1", "nbia-v4"])
async def test_each_method_on_the_wire(serve, api: str) -> None:
    recorder = Recorder()
    base = await serve({"/api/{name}": recorder.handler})
    async with client(base, api=api) as c:
        for method, args, per_dialect in CALLS:
            if api not in per_dialect:
                with pytest.raises(UsageError, match=f"{api} API has no"):
                    await getattr(c, method)(*args)
                continue
            assert await getattr(c, method)(*args) in ([], None)
            name, params = per_dialect[api]
            assert recorder.calls[-1][1:] == (name, params), method
    posts = [call for call in recorder.calls if call[0] == "POST"]
    assert [p[1] for p in posts] == (["getSeriesMetadata"] if api == "nbia-v4" else [])


async def test_md5_download_needs_an_nbia_dialect(serve) -> None:
    base = await serve({})
    async with client(base, api="v3") as c:
        assert not c.has_md5 and c.api == "v3"
        with pytest.raises(UsageError, match="getImageWithMD5Hash"):
            await c.download_image("1.2", bytearray(), md5=True)


@pytest.mark.parametrize(("api", "md5", "new_names", "expected"), [
    # v4: one getImage with IncludeMD5 (LICENSE first, md5hashes.csv last), not the
    # LICENSE-less getImageWithMD5Hash; NewFileNames so a NULL digest cannot cut it short.
    ("nbia-v4", True, False, ("getImage", {"SeriesInstanceUID": "1.2", "IncludeMD5": "Yes",
                                           "NewFileNames": "Yes"})),
    ("nbia-v4", True, True, ("getImage", {"SeriesInstanceUID": "1.2", "IncludeMD5": "Yes",
                                          "NewFileNames": "Yes"})),
    ("nbia-v4", False, False, ("getImage", {"SeriesInstanceUID": "1.2"})),
    ("nbia-v1", True, False, ("getImageWithMD5Hash", {"SeriesInstanceUID": "1.2"})),
    ("nbia-v1", False, True, ("getImage", {"SeriesInstanceUID": "1.2",
                                           "NewFileNames": "Yes"})),
])
async def test_series_zip_request(serve, api: str, md5: bool, new_names: bool,
                                  expected: tuple[str, dict[str, str]]) -> None:
    recorder = Recorder()
    base = await serve({"/api/{name}": recorder.handler})
    async with client(base, api=api) as c:
        await c.download_image("1.2", bytearray(), md5=md5, new_file_names=new_names)
    assert [call[1:] for call in recorder.calls] == [expected]
