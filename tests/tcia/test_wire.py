"""Wire edge cases against loopback aiohttp servers: bodies, statuses, retries, streaming."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from mirror.domain import SeriesSize
from mirror.errors import (
    PermanentApiError,
    ProtocolError,
    SourceUnreachable,
    StorageError,
    TransientApiError,
)
from mirror.retry import RetryPolicy
from tests.tcia.conftest import client

SERIES = [{"SeriesInstanceUID": f"1.2.{i}", "StudyInstanceUID": "1.2", "PatientID": "P",
           "Collection": "C", "ImageCount": i} for i in range(50)]


def counting(handler):
    """Wrap *handler*; ``wrapped.calls`` counts requests."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        wrapped.calls += 1
        return await handler(request, wrapped.calls)
    wrapped.calls = 0
    return wrapped


def fixed(make):
    """An async handler answering ``make()`` to every request."""
    async def handler(request: web.Request) -> web.StreamResponse:
        return make()
    return handler


async def _answer(resp: web.StreamResponse) -> web.StreamResponse:
    return resp


async def cut_off(request: web.Request, body: bytes) -> web.StreamResponse:
    """Send the start of *body* chunked, then drop the connection."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    await resp.write(body)
    request.transport.close()
    return resp


async def test_empty_body_is_no_results(serve) -> None:
    base = await serve({"/api/{name}": fixed(lambda: web.Response(body=b""))})
    async with client(base) as c:
        assert await c.get_series(collection="C") == []
        assert await c.get_collection_values() == []
        assert await c.get_patients(collection="C") == []
        assert await c.get_series_size("1.2") == SeriesSize(None, None)


async def test_series_size_of_unknown_uid(serve) -> None:
    base = await serve({"/api/getSeriesSize": fixed(lambda: web.json_response([{}]))})
    async with client(base) as c:
        assert await c.get_series_size("9.9") == SeriesSize(None, None)


async def test_body_part_values_with_null_objects(serve) -> None:
    body = [{}, {"BodyPartExamined": "ABDOMEN"}]
    base = await serve({"/api/getBodyPartValues": fixed(lambda: web.json_response(body))})
    async with client(base) as c:
        assert await c.get_body_part_values(modality="CT") == ["ABDOMEN"]


@pytest.mark.parametrize("method", ["get_series", "get_collection_values"])
async def test_html_page_where_json_was_expected(serve, method: str) -> None:
    page = "<html><head><title>Maintenance</title></head><body>Back soon</body></html>"
    handler = counting(lambda r, n: _answer(web.Response(text=page, content_type="text/html")))
    base = await serve({"/api/{name}": handler})
    async with client(base) as c:
        with pytest.raises(ProtocolError) as info:
            await getattr(c, method)()
    assert "HTTP 200" in str(info.value) and "HTML" in str(info.value)
    assert info.value.endpoint in ("getSeries", "getCollectionValues")
    assert handler.calls == 1  # a malformed body is not retried in place


async def test_malformed_json_names_endpoint_and_status(serve) -> None:
    base = await serve({"/api/getPatientStudy": fixed(lambda:
        web.Response(body=b'[{"StudyInstanceUID":', content_type="application/json"))})
    async with client(base) as c:
        with pytest.raises(ProtocolError, match=r"getPatientStudy: HTTP 200: malformed JSON"):
            await c.get_patient_studies(collection="C")


async def test_plain_text_400_labelled_json_is_permanent_and_not_retried(serve) -> None:
    text = "A parameter, SeriesInstanceUID is required for this API call."
    handler = counting(lambda r, n: _answer(
        web.Response(status=400, text=text, content_type="application/json")))
    base = await serve({"/api/getSOPInstanceUIDs": handler})
    async with client(base) as c:
        with pytest.raises(PermanentApiError) as info:
            await c.get_sop_instance_uids("")
    assert text in str(info.value) and info.value.status == 400
    assert info.value.exit_code == 1 and not info.value.transient
    assert handler.calls == 1


async def test_burst_of_500_then_success(serve) -> None:
    async def handler(request: web.Request, n: int) -> web.Response:
        if n <= 2:
            return web.Response(status=500, text="Server was not able to process your request")
        return web.json_response([{"Collection": "A"}, {"Collection": "B"}])
    wrapped = counting(handler)
    base = await serve({"/api/getCollectionValues": wrapped})
    async with client(base) as c:
        assert await c.get_collection_values() == ["A", "B"]
    assert wrapped.calls == 3


async def test_500s_beyond_the_retry_budget(serve) -> None:
    wrapped = counting(lambda r, n: _answer(web.Response(status=503, text="busy")))
    base = await serve({"/api/getCollectionValues": wrapped})
    async with client(base, policy=RetryPolicy(retries=2, base=0.01, cap=0.01)) as c:
        with pytest.raises(TransientApiError, match="getCollectionValues: HTTP 503: busy"):
            await c.get_collection_values()
    assert wrapped.calls == 3


@pytest.mark.parametrize("as_date", [False, True])
async def test_429_retry_after_is_honoured(serve, as_date: bool) -> None:
    sent: list[float] = []

    async def handler(request: web.Request, n: int) -> web.Response:
        sent.append(time.monotonic())
        if n == 1:
            when = (format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
                    if as_date else "1")
            return web.Response(status=429, headers={"Retry-After": when})
        return web.json_response([{"Collection": "A"}])
    base = await serve({"/api/getCollectionValues": counting(handler)})
    async with client(base) as c:
        assert await c.get_collection_values() == ["A"]
    # An HTTP date has one-second resolution: "now + 2 s" means at least one second.
    assert sent[1] - sent[0] >= 1.0


async def test_retry_after_too_long_is_raised_with_its_value(serve) -> None:
    wrapped = counting(lambda r, n: _answer(web.Response(status=429,
                                                         headers={"Retry-After": "3600"})))
    base = await serve({"/api/getCollectionValues": wrapped})
    async with client(base, max_retry_after=7200.0) as c:  # the default clamp is 15 min
        with pytest.raises(TransientApiError) as info:
            await c.get_collection_values()
    assert info.value.retry_after == 3600.0 and wrapped.calls == 1


async def test_reset_mid_body_of_a_small_answer_is_retried(serve) -> None:
    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        if n == 1:
            return await cut_off(request, b'[{"Collection":"A"},{"Coll')
        return web.json_response([{"Collection": "A"}, {"Collection": "B"}])
    wrapped = counting(handler)
    base = await serve({"/api/getCollectionValues": wrapped})
    async with client(base) as c:
        assert await c.get_collection_values() == ["A", "B"]
    assert wrapped.calls == 2


async def test_listing_reset_mid_body_resumes_without_duplicates(serve) -> None:
    body = json.dumps(SERIES, separators=(",", ":")).encode()

    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        if n == 1:
            return await cut_off(request, body[: len(body) // 2])
        return web.Response(body=body, content_type="application/json")
    base = await serve({"/api/getSeries": counting(handler)})
    async with client(base) as c:
        got = [s.series_uid async for s in c.iter_series(collection="C")]
    assert got == [r["SeriesInstanceUID"] for r in SERIES]


async def test_listing_that_changes_while_resuming_fails_transiently(serve) -> None:
    body = json.dumps(SERIES, separators=(",", ":")).encode()
    other = json.dumps(SERIES[::-1], separators=(",", ":")).encode()

    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        if n == 1:
            return await cut_off(request, body[: len(body) // 2])
        return web.Response(body=other, content_type="application/json")
    base = await serve({"/api/getSeries": counting(handler)})
    async with client(base, policy=RetryPolicy(retries=1, base=0.01, cap=0.01)) as c:
        with pytest.raises(TransientApiError, match="listing changed"):
            await c.get_series(collection="C")


async def test_listing_streams_in_many_chunks(serve) -> None:
    records = SERIES * 400  # ~1.5 MB, several reads
    body = json.dumps(records, separators=(",", ":")).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for i in range(0, len(body), 7001):
            await resp.write(body[i:i + 7001])
        await resp.write_eof()
        return resp
    base = await serve({"/api/getSeries": handler})
    async with client(base) as c:
        count = 0
        async for series in c.iter_series(collection="C"):
            count += 1
            assert series.collection == "C"
    assert count == len(records)


class Collect:
    """A sync sink."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk


class AsyncCollect(Collect):
    """An async sink that can start over, like a staging file."""

    restarts = 0

    async def write(self, chunk: bytes) -> None:  # type: ignore[override]
        self.data += chunk

    async def restart(self) -> None:
        self.restarts += 1
        self.data.clear()


PAYLOAD = bytes(range(256)) * 4096 * 3  # 3 MiB


def zip_stream(fail_first: bool):
    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        assert request.query["SeriesInstanceUID"] == "1.2.3"
        if fail_first and n == 1:
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await resp.prepare(request)
            await resp.write(PAYLOAD[: len(PAYLOAD) // 3])
            request.transport.close()
            return resp
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        for i in range(0, len(PAYLOAD), 100_000):
            await resp.write(PAYLOAD[i:i + 100_000])
        await resp.write_eof()
        return resp
    return counting(handler)


@pytest.mark.parametrize("sink_type", [Collect, AsyncCollect])
async def test_download_streams_into_sync_or_async_sink(serve, sink_type) -> None:
    base = await serve({"/api/getImage": zip_stream(fail_first=False)})
    sink, seen = sink_type(), []
    async with client(base) as c:
        written = await c.download_image("1.2.3", sink, progress=seen.append)
    assert written == len(PAYLOAD) == sum(seen) and bytes(sink.data) == PAYLOAD
    assert len(seen) > 1 and max(seen) <= 256 * 1024


async def test_download_cut_off_without_restart_is_transient(serve) -> None:
    handler = zip_stream(fail_first=True)
    base = await serve({"/api/getImage": handler})
    async with client(base) as c:
        with pytest.raises(TransientApiError, match="cut off after") as info:
            await c.download_image("1.2.3", Collect())
    assert info.value.transient and handler.calls == 1


async def test_download_cut_off_with_restartable_sink_retries_in_place(serve) -> None:
    handler = zip_stream(fail_first=True)
    base = await serve({"/api/getImageWithMD5Hash": handler})
    sink = AsyncCollect()
    async with client(base) as c:
        assert await c.download_image("1.2.3", sink, md5=True) == len(PAYLOAD)
    assert bytes(sink.data) == PAYLOAD and sink.restarts == 1 and handler.calls == 2


async def test_download_of_unknown_series_surfaces_the_server_text(serve) -> None:
    text = "Image with given SeriesInstanceUID,9.9, is not in public domain."
    handler = counting(lambda r, n: _answer(
        web.Response(status=400, text=text, content_type="application/json")))
    base = await serve({"/api/getImage": handler})
    async with client(base) as c:
        with pytest.raises(PermanentApiError, match="not in public domain"):
            await c.download_image("9.9", Collect())
    assert handler.calls == 1


async def test_sink_write_failure_is_a_storage_error(serve) -> None:
    class Full:
        def write(self, chunk: bytes) -> None:
            raise OSError(28, "No space left on device")
    base = await serve({"/api/getImage": zip_stream(fail_first=False)})
    async with client(base) as c:
        with pytest.raises(StorageError, match="No space left"):
            await c.download_image("1.2.3", Full())


async def test_single_image_params(serve) -> None:
    async def handler(request: web.Request) -> web.Response:
        assert dict(request.query) == {"SeriesInstanceUID": "1.2", "SOPInstanceUID": "1.2.9"}
        return web.Response(body=b"DICM", content_type="application/dicom")
    base = await serve({"/api/getSingleImage": handler})
    sink = Collect()
    async with client(base) as c:
        assert await c.download_single_image("1.2", "1.2.9", sink) == 4
    assert sink.data == b"DICM"


async def test_connection_refused_is_source_unreachable(unused_tcp_port: int) -> None:
    base = f"http://127.0.0.1:{unused_tcp_port}/api"
    async with client(base, api="v3", api_key="SECRET-KEY") as c:
        with pytest.raises(SourceUnreachable) as info:
            await c.get_collection_values()
    assert info.value.exit_code == 3
    assert "SECRET-KEY" not in str(info.value) and "SECRET-KEY" not in repr(c)


async def test_idle_read_timeout_is_transient(serve) -> None:
    never = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response([])
    base = await serve({"/api/getSeries": handler})
    policy = RetryPolicy(retries=1, base=0.01, cap=0.01)
    async with client(base, policy=policy, read_timeout=0.2) as c:
        with pytest.raises(TransientApiError, match="timed out"):
            await c.get_series()


async def test_connection_cap_per_host(serve) -> None:
    in_flight, peak = 0, 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)  # simulated server latency, keeps the connection busy
        in_flight -= 1
        return web.json_response([{"Collection": "A"}])
    base = await serve({"/api/getCollectionValues": handler})
    async with client(base, max_connections=2) as c:
        results = await asyncio.gather(*(c.get_collection_values() for _ in range(6)))
    assert results == [["A"]] * 6 and peak == 2


async def test_requests_per_second_limit(serve) -> None:
    base = await serve({"/api/getCollectionValues": fixed(lambda:
        web.json_response([{"Collection": "A"}]))})
    async with client(base, requests_per_second=20.0) as c:
        started = time.monotonic()
        for _ in range(5):
            await c.get_collection_values()
    assert time.monotonic() - started >= 4 / 20.0 * 0.95
