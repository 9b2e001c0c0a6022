"""NBIA ``.tcia`` manifests: parse one into series UIDs, and write one from a list of UIDs.

Pure functions. The format, as the TCIA portal's cart writes it::

    downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet
    includeAnnotation=true
    noOfrRetry=4
    databasketId=manifest-1561766528292.tcia
    manifestVersion=3.0
    ListOfSeriesToDownload=
    1.3.6.1.4.1.14519.5.2.1.2932.1975.258485580179562855968279889580
    ...

Parsing accepts what the NBIA Data Retriever and tcia-utils accept (any header keys and
versions, CRLF, a BOM, blank lines, trailing spaces, ``#`` comments, a bare list of UIDs)
and rejects everything else with :class:`ManifestError`, one line naming the line number.
Writing emits exactly the six header lines tcia-utils' ``manifestToList`` skips.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mirror.archive.layout import UID_MAX_LEN, UID_RE
from mirror.errors import UsageError

MARKER = "ListOfSeriesToDownload"
#: The portal's download servlet; the Data Retriever reads it, we never call it.
DOWNLOAD_SERVER_URL = ("https://nbia.cancerimagingarchive.net/nbia-download/servlet/"
                       "DownloadServlet")
MANIFEST_VERSION = "3.0"
#: Largest manifest read (NLST whole is ~200,000 UIDs, about 13 MB).
MAX_BYTES = 64 << 20


class ManifestError(UsageError):
    """A manifest that cannot be read or is malformed (exit 2, one line)."""


@dataclass(frozen=True)
class Manifest:
    """The series a manifest lists (in order, without repeats) and its header values."""

    series_uids: tuple[str, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = ""


def read_manifest(path: str | Path) -> Manifest:
    """Read and parse the manifest at *path*; :class:`ManifestError` on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"manifest {path}: cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise ManifestError(f"manifest {path}: larger than {MAX_BYTES >> 20} MiB")
    return parse_manifest(data, name=str(path))


def parse_manifest(data: bytes, *, name: str = "manifest") -> Manifest:
    """Parse manifest bytes. Raises only :class:`ManifestError`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(f"{name}: line {where}: not UTF-8 text") from None
    headers: dict[str, str] = {}
    uids: dict[str, None] = {}
    in_list = False
    # split on "\n" only (not str.splitlines) so line numbers match what an editor shows
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if number == 1 and line.startswith("<"):
            raise ManifestError(f"{name}: line 1: XML manifests are not supported; use the "
                                ".tcia file it links to")
        key, sep, value = line.partition("=")
        if sep and not in_list:
            key = key.strip()
            if not key or not key.replace("_", "").isalnum():
                raise ManifestError(f"{name}: line {number}: malformed header {_show(line)}")
            if key == MARKER:
                if value.strip():
                    raise ManifestError(f"{name}: line {number}: {MARKER}= must end its line")
                in_list = True
            else:
                headers[key] = value.strip()
            continue
        if not valid_uid(line):
            what = "header after the series list" if sep else "SeriesInstanceUID"
            raise ManifestError(f"{name}: line {number}: not a valid {what}: {_show(line)}")
        uids[line] = None
    return Manifest(tuple(uids), headers, name)


def valid_uid(text: str) -> bool:
    return len(text) <= UID_MAX_LEN and UID_RE.fullmatch(text) is not None


def _show(line: str, limit: int = 60) -> str:
    shown = line if len(line) <= limit else line[:limit] + "..."
    return repr(shown)


def format_manifest(series_uids: Iterable[str], *, databasket_id: str = "manifest.tcia",
                    include_annotation: bool = True, retries: int = 4) -> str:
    """A manifest the NBIA Data Retriever and tcia-utils read, listing *series_uids*.

    Exactly six header lines (tcia-utils drops the first six), ``\\n`` line endings and a
    final newline; UIDs are validated so that nothing but UIDs follows the marker.
    """
    lines = [
        f"downloadServerUrl={DOWNLOAD_SERVER_URL}",
        f"includeAnnotation={'true' if include_annotation else 'false'}",
        f"noOfrRetry={retries}",
        f"databasketId={databasket_id}",
        f"manifestVersion={MANIFEST_VERSION}",
        f"{MARKER}=",
    ]
    for uid in dict.fromkeys(series_uids):
        if not valid_uid(uid):
            raise ManifestError(f"refusing to write invalid SeriesInstanceUID {uid!r}")
        lines.append(uid)
    return "\n".join(lines) + "\n"
