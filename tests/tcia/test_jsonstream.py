"""The incremental array scanner: any chunking gives what json.loads gives; bad bodies fail."""

import json
import random

import pytest

from mirror.tcia.jsonstream import (
    MAX_OBJECT_CHARS,
    ArrayScanner,
    JsonArrayError,
    ListingChanged,
    parse_array,
)

RECORDS = [
    {"SeriesInstanceUID": "1.2.3", "LicenseURI": "http://x/y", "ImageCount": 3,
     "AnnotationsFlag": True, "Desc": 'quote " and brace } and bracket ] inside'},
    {},
    {"PatientName": "Zoë Ångström 患者", "Nested": {"a": [1, {"b": "}"}]}},
    {"Escapes": "tab\t newline\n backslash\\ unicode \u00e9 \U0001F600"},
]


def jettison(records: list) -> bytes:
    """Compact, with every '/' escaped, like NBIA's Jettison 1.1."""
    text = json.dumps(records, separators=(",", ":"), ensure_ascii=False)
    return text.replace("/", "\\/").encode()


def feed_in_pieces(body: bytes, cuts: list[int]) -> list:
    scanner, out, last = ArrayScanner(), [], 0
    for cut in [*sorted(cuts), len(body)]:
        out += scanner.feed(body[last:cut])
        last = cut
    return out + scanner.close()


def test_every_single_split_point() -> None:
    body = jettison(RECORDS)
    for cut in range(len(body) + 1):
        assert feed_in_pieces(body, [cut]) == RECORDS, cut


def test_byte_by_byte_and_random_chunkings() -> None:
    body = jettison(RECORDS * 20)
    assert feed_in_pieces(body, list(range(1, len(body)))) == RECORDS * 20
    rng = random.Random(3)
    for _ in range(50):
        cuts = rng.sample(range(len(body)), rng.randint(1, 40))
        assert feed_in_pieces(body, cuts) == RECORDS * 20


def test_pretty_printed_body() -> None:
    assert parse_array(json.dumps(RECORDS, indent=4).encode()) == RECORDS


def test_objects_are_released_as_they_complete() -> None:
    scanner = ArrayScanner()
    assert scanner.feed(b'[{"a":1},{"b"') == [{"a": 1}]
    assert scanner.feed(b':2}') == [{"b": 2}]
    assert scanner.feed(b"]") == []
    assert scanner.close() == [] and scanner.count == 2


@pytest.mark.parametrize("body", [b"", b"   ", b"[]", b" [ ] \n"])
def test_empty_bodies(body: bytes) -> None:
    assert parse_array(body) == []


@pytest.mark.parametrize(("body", "message"), [
    (b'{"a":1}', "expected a JSON array"),
    (b"<html>oops</html>", "expected a JSON array"),
    (b'[{"a":1}', "ends inside the array"),
    (b"[", "ends inside the array"),
    (b'[{"a":1},]', "expected an object"),
    (b'[{"a":1}{"b":2}]', "expected ',' or ']'"),
    (b"[1]", "expected an object"),
    (b'[{"a":1}] trailing', "after the array"),
    (b'[{"a":}]', "malformed"),
    (b'[{"a":"\xff"}]', "not UTF-8"),
])
def test_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(JsonArrayError, match=message):
        parse_array(body)


def test_runaway_object_stops_buffering() -> None:
    scanner = ArrayScanner()
    scanner.feed(b'[{"a":"')
    with pytest.raises(JsonArrayError, match="malformed"):
        for _ in range(MAX_OBJECT_CHARS // (1 << 20) + 2):
            scanner.feed(b"x" * (1 << 20))


def test_a_rescan_after_any_checkpoint_gives_exactly_the_rest() -> None:
    body = jettison(RECORDS * 3)
    for cut in range(len(body) + 1):
        first = ArrayScanner()
        before = first.feed(body[:cut])
        again = ArrayScanner(after=first.checkpoint())
        rest = [*again.feed(body[:cut // 2]), *again.feed(body[cut // 2:]), *again.close()]
        assert before + rest == RECORDS * 3, cut


def test_a_rescan_of_a_changed_or_shorter_body_is_refused() -> None:
    body = jettison(RECORDS * 3)
    first = ArrayScanner()
    assert first.feed(body[:len(body) // 2])
    changed = jettison(RECORDS[::-1] * 3)
    with pytest.raises(ListingChanged) as info:
        ArrayScanner(after=first.checkpoint()).feed(changed)
    assert not info.value.shorter
    shorter = ArrayScanner(after=first.checkpoint())
    assert shorter.feed(body[:len(body) // 4]) == []
    with pytest.raises(ListingChanged) as info:
        shorter.close()
    assert info.value.shorter


#: Values the chunk decoder (orjson) reads differently from json, or refuses: each row
#: holding one must come out exactly as ``json.loads`` reads it.
ODD_VALUES = [
    2**64, 2**64 - 1, -(2**63) - 1, -(2**63), 10**30, -(10**30), 2**63,
    float(2**63), 1e19, -1e19, 1.5, float("nan"), float("inf"), float("-inf"),
    "\ud800", "a\udc00b", {"deep": [1, 2**70, {"x": -(2**65)}]}, [10**25],
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_values_the_fast_decoder_reads_otherwise_come_out_as_json_reads_them(
        value: object) -> None:
    # json.dumps writes NaN, the infinities and lone surrogates as json.loads reads them
    body = json.dumps([{"n": 1}, {"odd": value, "i": 7}, {"n": 2}]).encode()
    expected = json.loads(body)
    for cut in (0, 5, len(body) // 2, len(body)):
        got = feed_in_pieces(body, [cut])
        assert repr(got) == repr(expected), cut  # repr: nan != nan, and int vs float
        assert [type(v) for r in got for v in r.values()] == [
            type(v) for r in expected for v in r.values()]


def test_many_rows_in_one_chunk_equal_json_loads_with_braces_in_strings() -> None:
    rows = [{"SeriesInstanceUID": f"1.2.{i}", "Desc": "}, {" * (i % 3), "Big": 2**64 + i,
             "Nested": {"a": "}"}} for i in range(500)]
    body = json.dumps(rows).encode()
    assert parse_array(body) == rows
    for step in (7, 1000, 65536):
        assert feed_in_pieces(body, list(range(step, len(body), step))) == rows


def test_a_non_object_among_objects_is_refused_in_any_chunking() -> None:
    body = b'[{"a":1},{"b":2},3,{"c":4}]'
    for cut in range(len(body) + 1):
        with pytest.raises(JsonArrayError, match="expected an object"):
            feed_in_pieces(body, [cut])
