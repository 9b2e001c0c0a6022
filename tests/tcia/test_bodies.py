"""Bounded body reads and the same-origin redirect rule, without a network (fake streams)."""

from __future__ import annotations

import anyio
import pytest
from yarl import URL

from mirror.errors import CrossOriginRedirect, ProtocolError, TransientApiError
from mirror.tcia.bodies import BodyLimits, BodyReader
from mirror.tcia.redirects import redirect_target


class Script:
    """A body that hands out its parts, each after its delay (0 = at once)."""

    def __init__(self, *parts: tuple[float, bytes]) -> None:
        self.parts = list(parts)

    async def read(self, n: int = -1) -> bytes:
        if not self.parts:
            return b""
        delay, data = self.parts.pop(0)
        if delay:
            await anyio.sleep(delay)
        return data


async def drain(reader: BodyReader) -> bytes:
    out = b""
    while chunk := await reader.read():
        out += chunk
    return out


async def test_enough_bytes_per_window_pass_whatever_the_total_time() -> None:
    body = Script(*[(0.02, b"x" * 100) for _ in range(10)])
    reader = BodyReader(body, "getImage", BodyLimits(0.1, 1000), chunk=1024)
    assert await drain(reader) == b"x" * 1000


async def test_a_trickle_below_the_minimum_rate_is_a_transient_stall() -> None:
    body = Script(*[(0.02, b"x") for _ in range(100)])
    reader = BodyReader(body, "getImage", BodyLimits(0.2, 1000), chunk=1024)
    with pytest.raises(TransientApiError, match="transfer stalled"):
        await drain(reader)
    assert reader.total < 20


async def test_silence_is_a_stall_even_with_a_zero_minimum_rate() -> None:
    reader = BodyReader(Script((5.0, b"late")), "getSeries", BodyLimits(0.1, 0), chunk=1024)
    with pytest.raises(TransientApiError, match="stalled"):
        await drain(reader)


async def test_a_listing_beyond_its_size_bound_is_refused_and_not_retried_in_place() -> None:
    body = Script(*[(0, b"y" * 1000) for _ in range(50)])
    reader = BodyReader(body, "getSeries", BodyLimits(1, 0, max_bytes=10_000), chunk=1024)
    with pytest.raises(ProtocolError, match="max_listing_bytes") as info:
        await drain(reader)
    assert getattr(info.value, "in_place", True) is False


async def test_a_listing_beyond_its_total_time_is_refused() -> None:
    body = Script(*[(0.02, b"z" * 100) for _ in range(100)])
    reader = BodyReader(body, "getSeries", BodyLimits(1, 10, max_seconds=0.2), chunk=1024)
    with pytest.raises(TransientApiError, match="listing_timeout"):
        await drain(reader)


ORIGIN = URL("https://tcia.example:443/x")  # an explicit default port is the same origin


@pytest.mark.parametrize("location", ["/nbia-api/services/v4/getSeries?a=1",
                                      "https://tcia.example/other", "getSeries?x=2"])
def test_same_origin_redirects_are_allowed(location: str) -> None:
    base = URL("https://tcia.example/nbia-api/services/v4/getSeries")
    target = redirect_target("getSeries", base, location, ORIGIN)
    assert (target.scheme, target.host, target.port) == ("https", "tcia.example", 443)


@pytest.mark.parametrize("location", ["https://tcia.example:8443/x", "http://tcia.example/x",
                                      "https://evil.example/x", "//evil.example/x",
                                      "https://user:pw@evil.example/x"])
def test_other_origins_are_refused_without_echoing_the_location(location: str) -> None:
    base = URL("https://tcia.example/nbia-api/services/v4/getSeries")
    with pytest.raises(CrossOriginRedirect, match="another origin") as info:
        redirect_target("getSeries", base, location, ORIGIN)
    assert "pw" not in str(info.value) and "/x" not in str(info.value)
