"""CSV, XML and HTML renderings, unknown formats, and the per-series metadata endpoints."""

from __future__ import annotations

import csv
import io
import json

from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import fetch


async def test_single_column_csv_is_unquoted(simulator: SimulatorHandle) -> None:
    raw = await fetch(simulator.base_url("nbia-v1") + "/getCollectionValues", format="CSV")
    assert (raw.headers["Content-Type"], raw.body) == ("text/csv", b"Collection\nSIM-LUNG\n")


async def test_multi_column_csv_is_fully_quoted(simulator: SimulatorHandle) -> None:
    raw = await fetch(simulator.base_url("nbia-v1") + "/getPatient", format="csv")
    lines = raw.text.split("\n")
    assert lines[0].startswith('"PatientId","PatientName","PatientBirthDate"')
    assert lines[1].startswith('"SIM-LUNG-0001","",""')
    assert raw.text.endswith("\n")
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    assert rows[0]["SpeciesDescription"] == "Homo sapiens"


async def test_xml_and_html(simulator: SimulatorHandle) -> None:
    base = simulator.base_url("nbia-v1")
    xml = await fetch(base + "/getSeries", format="xml")
    assert xml.headers["Content-Type"] == "application/xml"
    assert xml.text.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                               '<Results><Row><SeriesInstanceUID type=\'java.lang.String\'>')
    assert "https&#x3a;&#x2f;&#x2f;creativecommons.org" in xml.text
    assert "<ImageCount type='java.lang.Integer'>" in xml.text
    assert "<FileSize type='java.lang.Long'>" in xml.text
    html = await fetch(base + "/getPatient", format="html")
    assert html.headers["Content-Type"] == "text/html"
    assert html.text.startswith("<P ALIGN='center'><TABLE BORDER=1><TR><TH>PatientId</TH>")
    assert "<TD>&nbsp;</TD>" in html.text and html.text.endswith("</TABLE></P>")


async def test_unknown_format_is_a_500_unless_empty(simulator: SimulatorHandle) -> None:
    base = simulator.base_url("nbia-v1")
    raw = await fetch(base + "/getSeries", format="yaml")
    assert (raw.status, raw.text) == (500, "Server was not able to process your request")
    empty = await fetch(base + "/getSeries", format="yaml", Collection="NO-SUCH")
    assert (empty.status, empty.body) == (200, b"")


async def test_v1_series_metadata(simulator: SimulatorHandle) -> None:
    uid, truth = next(iter(simulator.ground_truth().items()))
    base = simulator.base_url("nbia-v1")
    rows = json.loads((await fetch(base + "/getSeriesMetaData", SeriesInstanceUID=uid)).body)
    assert list(rows[0])[:2] == ["Series UID", "Collection"]
    assert rows[0]["Number of Images"] == str(truth.image_count)
    assert rows[0]["File Size"] == str(truth.file_size)
    assert rows[0]["Series Number"].endswith(".000000")
    missing = await fetch(base + "/getSeriesMetaData", SeriesInstanceUID="1.2.3")
    assert missing.status == 204


async def test_v4_series_metadata_post_defaults_to_csv_download(
        simulator: SimulatorHandle) -> None:
    uids = list(simulator.ground_truth())
    raw = await fetch(simulator.base_url("nbia-v4") + "/getSeriesMetadata", method="POST",
                      data={"list": ",".join(uids)})
    assert raw.status == 200
    assert raw.headers["Content-Disposition"] == 'attachment; filename="SeriesMetaData.csv"'
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    assert {r["SeriesInstanceUID"] for r in rows} == set(uids)
    assert next(iter(rows[0])) == "PatientID" and list(rows[0])[-1] == "Authorized"
    missing = await fetch(simulator.base_url("nbia-v4") + "/getSeriesMetadata", method="POST",
                          data={"format": "json"})
    assert missing.status == 400
    assert missing.text == ("A form parameter, list, containing at least one SeriesInstanceUID "
                            "is required.")


async def test_contents_by_name(simulator: SimulatorHandle) -> None:
    name, uids = next(iter(simulator.shared_lists().items()))
    rows = json.loads((await fetch(simulator.base_url("nbia-v1") + "/getContentsByName",
                                   name=name)).body)
    assert [r["SeriesInstanceUID"] for r in rows] == list(uids)
    assert list(rows[0])[-1] == "Date Released"
    as_csv = json.loads((await fetch(simulator.base_url("nbia-v1") + "/getContentsByName",
                                     name=name, format="csv")).body)
    assert as_csv == rows  # no format parameter: always JSON
    # Neither v3 nor v4 has shared lists (tcia-api-v4.md section 8).
    assert (await fetch(simulator.base_url("v3") + "/ContentsByName", name=name)).status == 404
    v4 = await fetch(simulator.base_url("nbia-v4") + "/getContentsByName", name=name)
    assert (v4.status, v4.text) == (500, "Server was not able to process your request\n"
                                         "HTTP 404 Not Found")
    unknown = await fetch(simulator.base_url("nbia-v1") + "/getContentsByName", name="nbia-0")
    assert (unknown.status, unknown.body) == (200, b"")


async def test_unknown_endpoint(simulator: SimulatorHandle) -> None:
    raw = await fetch(simulator.base_url("nbia-v1") + "/getNothing")
    assert (raw.status, raw.text) == (500, "Server was not able to process your request\n"
                                           "HTTP 404 Not Found")
