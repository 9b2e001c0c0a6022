"""What an endpoint answers, before it goes on the wire (faults may still change it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mirror.simulator.model import CollectionInfo, Series
from mirror.simulator.zips import ZipVariant

#: The body of the server's ``ExceptionMapper<Throwable>`` for a NullPointerException.
SERVER_ERROR = "Server was not able to process your request"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ZipReply:
    """A series ZIP, streamed chunked from the cache like the server's StreamingOutput."""

    series: Series
    collection: CollectionInfo
    variant: ZipVariant
    filename: str
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class FileReply:
    """One stored DICOM file (getSingleImage)."""

    blob: str
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


AnyReply = Reply | ZipReply | FileReply

EMPTY = Reply()


def bad_request(text: str) -> Reply:
    # Jersey sends these plain-text messages labelled as JSON.
    return Reply(400, text.encode(), "application/json")


def server_error(detail: str = "null") -> Reply:
    return Reply(500, f"{SERVER_ERROR}\n{detail}".encode(), "text/plain")
