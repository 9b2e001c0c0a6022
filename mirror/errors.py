"""One exception root for tcia-mirror; every class knows its exit code and message, and
every error says how it may be retried (``transient``, ``in_place``, ``retry_after``:
read by :class:`mirror.retry.RetryPolicy`, the one place that decides).

Errors from aiohttp, SQLAlchemy and pydicom are converted where they enter the
program (``raise ... from exc``), so the CLI only ever sees this tree:

    MirrorError                         exit 1
    ├── UsageError                      exit 2  bad flag or argument
    ├── ConfigError                     exit 2  bad or unknown config key
    ├── SourceError                     exit 3  TCIA (or the simulator) cannot be used
    │   ├── SourceUnreachable           exit 3  connection refused, DNS, TLS
    │   └── AuthError                   exit 3  token or api_key refused
    ├── ApiError                        exit 1  an HTTP answer we cannot use
    │   ├── TransientApiError                   5xx, 429, reset: retry later
    │   ├── PermanentApiError                   400 and friends: do not retry
    │   │   └── CrossOriginRedirect             a redirect to another origin (refused)
    │   └── ProtocolError                       malformed body (bad JSON, HTML page)
    ├── TransferError                   exit 1  a series download that cannot be committed
    │   ├── TruncatedArchive                    ZIP cut short or unreadable (transient)
    │   ├── HostileArchive                      ../ names, bombs, duplicates (permanent)
    │   └── VerificationError                   counts, sizes, MD5, DICOM UIDs disagree
    ├── CatalogError                    exit 1  database problems
    │   └── IllegalTransition                   a series state change the table forbids
    ├── StorageError                    exit 1  permissions, I/O errors
    │   └── StorageFull                         ENOSPC / EDQUOT: transient, retried
    └── Interrupted                     exit 130
"""

from __future__ import annotations

import errno as _errno
import os as _os
import re
import sys

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s?#]*@")


def redact(text: str) -> str:
    """*text* with the userinfo of every URL in it masked (``scheme://***@host``).

    Every :class:`MirrorError` message passes through here, so a ``base_url`` or catalog
    URL carrying ``user:password@`` is never printed, logged or stored in ``last_error``.
    """
    return _USERINFO.sub(r"\1***@", text)


class MirrorError(Exception):
    """tcia-mirror failed."""

    exit_code = 1
    #: Transient errors are retried (in place for requests, later for series).
    transient = False
    #: Seconds the server asked us to wait (Retry-After, clamped where it was read);
    #: None when it asked nothing. Read by :class:`mirror.retry.RetryPolicy`.
    retry_after: float | None = None
    #: False when repeating the same request at once would fail the same way (a sink
    #: that already got bytes, an endless body, a TLS failure): the series is
    #: rescheduled instead of the request retried in place.
    in_place: bool = True

    def __init__(self, message: str | None = None, *, in_place: bool = True) -> None:
        self.in_place = in_place
        super().__init__(redact(message or (self.__doc__ or "").strip()))

    @property
    def message(self) -> str:
        return str(self)


class UsageError(MirrorError):
    """Bad usage."""

    exit_code = 2


class ConfigError(MirrorError):
    """Bad configuration."""

    exit_code = 2


class SourceError(MirrorError):
    """The TCIA source cannot be used."""

    exit_code = 3


class SourceUnreachable(SourceError):
    """The TCIA source is unreachable."""

    transient = True


class AuthError(SourceError):
    """The TCIA source refused our credentials."""


class ApiError(MirrorError):
    """The TCIA API answered with something we cannot use."""

    def __init__(
        self,
        message: str | None = None,
        *,
        endpoint: str = "",
        status: int | None = None,
        body: str = "",
        in_place: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.body = body
        super().__init__(message, in_place=in_place)


class TransientApiError(ApiError):
    """The TCIA API failed transiently."""

    transient = True

    def __init__(self, message: str | None = None, *, retry_after: float | None = None,
                 endpoint: str = "", status: int | None = None, body: str = "",
                 in_place: bool = True) -> None:
        self.retry_after = retry_after
        super().__init__(message, endpoint=endpoint, status=status, body=body,
                         in_place=in_place)


class PermanentApiError(ApiError):
    """The TCIA API refused the request."""


class ProtocolError(ApiError):
    """The TCIA API sent a malformed response."""

    transient = True


class TransferError(MirrorError):
    """A series could not be transferred."""


class TruncatedArchive(TransferError):
    """The series archive is truncated or unreadable."""

    transient = True


class HostileArchive(TransferError):
    """The series archive contains a hostile entry."""


class VerificationError(TransferError):
    """Downloaded data failed verification."""

    transient = True


class CatalogError(MirrorError):
    """The catalog failed."""


class IllegalTransition(CatalogError):
    """A series state change that the transition table forbids."""


class StorageError(MirrorError):
    """The archive storage failed."""

    @property
    def transient(self) -> bool:  # type: ignore[override]
        """A full disk or quota is transient wherever it was raised (``from`` an OSError)."""
        return is_storage_full(self.__cause__)


class Interrupted(MirrorError):
    """Interrupted."""

    exit_code = 130


class InvalidUid(MirrorError):
    """A DICOM UID is malformed."""

    # Not transient: the same UID is malformed on every attempt.


# --- appended: wire trust (redirects, full disks) ----------------------------------------

#: errno values that mean "no space": they pass once space is freed.
STORAGE_FULL_ERRNOS = frozenset({_errno.ENOSPC, _errno.EDQUOT})
#: Every StorageFull message starts with this; ``status`` and ``/healthz`` look for it.
STORAGE_FULL_MARK = "storage full"


#: What a recorded error (a string in the catalog) says when the disk was full.
STORAGE_FULL_TEXTS = (STORAGE_FULL_MARK, *sorted(_os.strerror(n) for n in STORAGE_FULL_ERRNOS))


def mentions_storage_full(text: str | None) -> bool:
    """True when a recorded error message is about a full disk or quota."""
    return bool(text) and any(mark in text for mark in STORAGE_FULL_TEXTS)  # type: ignore[operator]


def is_storage_full(exc: BaseException | None) -> bool:
    """True for an OSError (or an error caused by one) saying the disk or quota is full."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
            return True
        if isinstance(exc, StorageFull):
            return True
        exc, seen = exc.__cause__, seen + 1
    return False


class StorageFull(StorageError):
    """The archive storage is full (ENOSPC or EDQUOT): retried with backoff until it is not."""

    def __init__(self, message: str | None = None) -> None:
        text = message or ""
        super().__init__(text if text.startswith(STORAGE_FULL_MARK)
                         else f"{STORAGE_FULL_MARK}: {text}")

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return True


class CrossOriginRedirect(PermanentApiError):
    """The server redirected to another origin; credentials never go there, so it is refused."""
# --- exception groups reach the user as one error ---

def leaves(exc: BaseException) -> list[BaseException]:
    """The non-group exceptions inside *exc* (itself when it is not a group), in order."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
    return [exc]


def most_meaningful(exc: BaseException) -> BaseException:
    """The one error to show for *exc*: the first domain error of a task group's failure.

    A task group that fails raises an ExceptionGroup of everything that went wrong in it,
    cancellations and follow-on failures included; the user wants the cause. Order of
    preference: an interrupt, a :class:`MirrorError` (the most specific exit code, i.e.
    usage/config before source before the rest), then the first other leaf.
    """
    found = leaves(exc)
    if any(isinstance(e, KeyboardInterrupt) for e in found):
        return Interrupted()
    ours = [e for e in found if isinstance(e, MirrorError)]
    if ours:
        rank = {2: 0, 3: 1, 130: 2}
        return min(ours, key=lambda e: rank.get(e.exit_code, 3))
    meaningful = [e for e in found if not _is_cancellation(e)]
    return (meaningful or found)[0]


def _is_cancellation(exc: BaseException) -> bool:
    # asyncio is looked up, not imported: an asyncio.CancelledError can only exist once
    # asyncio is loaded, and importing it here would cost `--help` a third of its time
    asyncio = sys.modules.get("asyncio")
    return isinstance(exc, GeneratorExit) or (
        asyncio is not None and isinstance(exc, asyncio.CancelledError))
