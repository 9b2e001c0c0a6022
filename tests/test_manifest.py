"""The .tcia manifest parser and writer: real-world variants, clean errors, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.errors import UsageError
from mirror.sync.manifest import ManifestError, format_manifest, parse_manifest, valid_uid

UIDS = ["1.3.6.1.4.1.14519.5.2.1.2932.1975.258485580179562855968279889580",
        "1.3.6.1.4.1.14519.5.2.1.2932.1975.828151202600553380765273057255"]

PORTAL = ("downloadServerUrl=https://public.cancerimagingarchive.net/nbia-download/servlet/"
          "DownloadServlet\nincludeAnnotation=true\nnoOfrRetry=4\n"
          "databasketId=manifest-1561766528292.tcia\nmanifestVersion=3.0\n"
          "ListOfSeriesToDownload=\n" + "\n".join(UIDS) + "\n")


def test_portal_manifest_with_headers() -> None:
    m = parse_manifest(PORTAL.encode())
    assert m.series_uids == tuple(UIDS)
    assert m.headers["manifestVersion"] == "3.0"
    assert m.headers["noOfrRetry"] == "4"
    assert m.headers["databasketId"] == "manifest-1561766528292.tcia"


@pytest.mark.parametrize("variant", [
    PORTAL.replace("\n", "\r\n"),                      # written on Windows
    "\ufeff" + PORTAL,                                  # with a BOM
    PORTAL.replace("\n", "  \n"),                       # trailing spaces
    PORTAL.replace("ListOfSeriesToDownload=\n", "ListOfSeriesToDownload=\n\n") + "\n\n",
    PORTAL.replace("manifestVersion=3.0", "manifestVersion=1.0"),
    PORTAL.replace("noOfrRetry=4\n", "noOfrRetry=4\nsomeFutureKey=x\n"),
    "# a comment\n" + PORTAL,
    "\n".join(UIDS),                                    # a bare list, as tcia-utils takes
    "downloadServerUrl=https://x/\n" + "\n".join(UIDS),  # no marker (the Retriever's test)
    PORTAL + UIDS[0] + "\n",                            # a repeat is listed once
])
def test_accepted_variants(variant: str) -> None:
    assert parse_manifest(variant.encode("utf-8")).series_uids == tuple(UIDS)


@pytest.mark.parametrize(("text", "line", "what"), [
    (PORTAL + "1.2.abc\n", 9, "not a valid SeriesInstanceUID: '1.2.abc'"),
    (PORTAL + "1." + "2" * 70 + "\n", 9, "not a valid SeriesInstanceUID"),
    (PORTAL.replace("includeAnnotation=true", "include annotation = true"), 2,
     "malformed header"),
    (PORTAL + "extra=1\n", 9, "header after the series list"),
    ("ListOfSeriesToDownload=1.2.3\n", 1, "must end its line"),
    ("<?xml version='1.0'?>\n<TCIACollection/>", 1, "XML manifests are not supported"),
    (PORTAL.replace("noOfrRetry=4", "noOfrRetry=4\n=oops"), 4, "malformed header"),
])
def test_malformed_names_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text.encode(), name="cart.tcia")
    message = str(info.value)
    assert message.startswith(f"cart.tcia: line {line}: ") and what in message
    assert "\n" not in message
    assert info.value.exit_code == 2 and isinstance(info.value, UsageError)


def test_not_utf8_names_the_line() -> None:
    with pytest.raises(ManifestError, match=r"line 3: not UTF-8"):
        parse_manifest(b"a=b\nc=d\n\xff\xfe\n")


def test_format_round_trips_and_has_six_header_lines() -> None:
    text = format_manifest(UIDS, databasket_id="x.tcia")
    lines = text.split("\n")
    assert lines[0].startswith("downloadServerUrl=") and lines[5] == "ListOfSeriesToDownload="
    assert lines[6:] == [*UIDS, ""]
    assert parse_manifest(text.encode()).series_uids == tuple(UIDS)
    with pytest.raises(ManifestError):
        format_manifest(["1.2.x"])


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_the_clean_error(data: bytes) -> None:
    try:
        m = parse_manifest(data, name="f")
    except ManifestError as exc:
        assert str(exc).startswith("f: line ") and "\n" not in str(exc)
    else:
        assert all(valid_uid(u) for u in m.series_uids)


_line = st.one_of(
    st.from_regex(r"\A[0-9]{1,5}(\.[0-9]{1,5}){0,6}\Z"),
    st.from_regex(r"\A[a-zA-Z]{1,12}=[ -~]{0,20}\Z"),
    st.text(max_size=30),
    st.sampled_from(["", " ", "ListOfSeriesToDownload=", "#x", "\r"]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_line, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_manifest_like_text_parses_or_fails_cleanly(lines: list[str], eol: str) -> None:
    try:
        m = parse_manifest(eol.join(lines).encode("utf-8", "surrogatepass"), name="f")
    except ManifestError as exc:
        assert str(exc).startswith("f: line ")
    else:
        assert all(valid_uid(u) for u in m.series_uids)
        assert parse_manifest(format_manifest(m.series_uids).encode()).series_uids == \
            m.series_uids
