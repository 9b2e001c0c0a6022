"""``tcia-mirror query``: raw records through the configured dialect, rendered three ways."""

from __future__ import annotations

import csv
import io
import json

import pytest
from aiohttp import web

from mirror.errors import UsageError
from mirror.tcia.query import render, run_query
from tests.tcia.conftest import source

RECORDS = [{"SeriesInstanceUID": "1.2.3", "Modality": "CT", "ImageCount": 3},
           {"SeriesInstanceUID": "1.2.4", "AnnotationsFlag": True, "LicenseURI": "http://x/y"}]


def test_json_is_the_records() -> None:
    assert json.loads(render(RECORDS, "json")) == RECORDS


def test_csv_has_every_column_once() -> None:
    rows = list(csv.DictReader(io.StringIO(render(RECORDS, "csv"))))
    assert list(rows[0]) == ["SeriesInstanceUID", "Modality", "ImageCount", "AnnotationsFlag",
                             "LicenseURI"]
    assert rows[1]["AnnotationsFlag"] == "true" and rows[1]["Modality"] == ""


def test_table_does_not_wrap_cells() -> None:
    lines = render(RECORDS, "table").splitlines()
    assert lines[0].split() == ["SeriesInstanceUID", "Modality", "ImageCount",
                                "AnnotationsFlag", "LicenseURI"]
    assert any("http://x/y" in line for line in lines)
    assert len([ln for ln in lines if "1.2.3" in ln]) == 1


@pytest.mark.parametrize(("fmt", "expected"), [("json", "[]"), ("csv", ""),
                                               ("table", "(no results)")])
def test_empty_result(fmt: str, expected: str) -> None:
    assert render([], fmt) == expected


async def test_run_query_passes_parameters_through(serve) -> None:
    seen: list[dict] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.json_response(RECORDS)
    base = await serve({"/api/getSeries": handler, "/api/PatientsByModality": handler})
    text = await run_query(source(base, "nbia-v4"), "getSeries", {"Collection": "X"}, "table")
    assert "1.2.3" in text and seen[-1] == {"Collection": "X"}
    # v3 wants format=json; the seed's endpoint names are used as given.
    text = await run_query(source(base, "v3"), "PatientsByModality",
                           {"Collection": "X", "Modality": "CT"}, "json")
    assert json.loads(text) == RECORDS
    assert seen[-1] == {"Collection": "X", "Modality": "CT", "format": "json"}


async def test_run_query_refuses_binary_endpoints(serve) -> None:
    base = await serve({})
    with pytest.raises(UsageError, match="returns files"):
        await run_query(source(base, "nbia-v1"), "getImage", {"SeriesInstanceUID": "1"}, "json")
