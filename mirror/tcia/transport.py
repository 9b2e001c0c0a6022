"""One aiohttp session per client: TLS, connection cap, idle timeouts, auth, rate limit, retries.

Every request goes through :meth:`Transport.attempts` (in-place retries as the
:class:`~mirror.retry.RetryPolicy` decides, one credential renewal on 401) and
:meth:`Transport.response` (one try, with HTTP status and aiohttp exceptions mapped into
the mirror.errors tree).

Redirects are followed by hand, and only within the origin (scheme, host, port) of the
configured URL: a redirect to any other origin is refused as :class:`CrossOriginRedirect`
(permanent; for the token endpoint an AuthError), so no credential (api_key header,
Bearer token, password or refresh grant) ever reaches a server that was not configured.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType

import aiohttp
import anyio

from mirror.config.settings import SourceSettings
from mirror.errors import (
    AuthError,
    ConfigError,
    MirrorError,
    PermanentApiError,
    ProtocolError,
    SourceUnreachable,
    TransientApiError,
)
from mirror.retry import (
    DEFAULT_MAX_RETRY_AFTER,
    RetryPolicy,
    retry_after_seconds,
    retryable_in_place,
)
from mirror.tcia.auth import Auth, make_auth
from mirror.tcia.bodies import BodyLimits, BodyReader
from mirror.tcia.parsing import snippet
from mirror.tcia.ratelimit import RateLimiter
from mirror.tcia.redirects import follow

log = logging.getLogger("mirror.tcia")

#: Read size for streamed bodies: big enough for throughput, small enough to bound memory.
CHUNK = 256 * 1024
#: Error bodies are messages, not data: never read more than this of one.
ERROR_BODY_LIMIT = 64 * 1024
USER_AGENT = "tcia-mirror/0.1 (+aiohttp)"


class Unauthorized(AuthError):
    """HTTP 401: the credentials in *used* were refused (renewed once, then final)."""

    def __init__(self, message: str, *, used: Mapping[str, str]) -> None:
        super().__init__(message)
        self.used = dict(used)

    def __repr__(self) -> str:  # *used* holds the bearer token: keep it out of reprs
        return f"Unauthorized({str(self)!r})"


def status_error(label: str, status: int, body: bytes, headers: Mapping[str, str],
                 used: Mapping[str, str], *,
                 max_retry_after: float = DEFAULT_MAX_RETRY_AFTER) -> MirrorError:
    """A non-2xx answer -> the error it means (pure, table-tested).

    Retry-After is clamped to *max_retry_after* (``source.max_retry_after``).
    """
    text = snippet(body)
    message = f"{label}: HTTP {status}" + (f": {text}" if text else "")
    if status == 401:
        return Unauthorized(f"{message} (credentials refused or missing)", used=used)
    if status == 403:
        return AuthError(f"{message} (access forbidden)")
    if status in (408, 425, 429) or status >= 500:
        retry_after = retry_after_seconds(headers.get("Retry-After", ""), datetime.now(UTC),
                                          cap=max_retry_after)
        return TransientApiError(message, retry_after=retry_after, endpoint=label,
                                 status=status, body=text)
    if 400 <= status < 500:
        return PermanentApiError(message, endpoint=label, status=status, body=text)
    return ProtocolError(message, endpoint=label, status=status, body=text)


def client_error(label: str, exc: BaseException) -> MirrorError:
    """An aiohttp / socket exception -> the error it means."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return SourceUnreachable(f"{label}: TLS verification failed: {exc}", in_place=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # asyncio's "Connect call failed (...)" hides the cause its errno names
        error = exc.os_error
        reason = (os.strerror(error.errno) if error.errno
                  else error.strerror or str(error))
        return SourceUnreachable(f"{label}: cannot connect to {exc.host}:{exc.port}: {reason}")
    if isinstance(exc, aiohttp.InvalidURL):
        return ConfigError(f"source.base_url: invalid URL ({exc})")
    if isinstance(exc, TimeoutError):
        return TransientApiError(f"{label}: timed out waiting for the server",
                                 endpoint=label)
    reason = str(exc) or type(exc).__name__
    return TransientApiError(f"{label}: connection lost: {reason}", endpoint=label)


def make_ssl_context(ca_bundle: str) -> ssl.SSLContext:
    """Verified TLS always; *ca_bundle* replaces the system trust store when set."""
    try:
        return ssl.create_default_context(cafile=ca_bundle or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"source.ca_bundle: cannot load {ca_bundle!r}: {exc}") from exc


class Attempts:
    """``async for attempt in transport.attempts(label): with attempt: ...``.

    The ``with`` block is one try. A retryable error is swallowed there and the next
    iteration sleeps (backoff, at least Retry-After) before trying again; a 401 renews
    the credentials once without sleeping; anything else, or the last failure, is raised.
    """

    def __init__(self, transport: Transport, label: str) -> None:
        self._transport = transport
        self._label = label
        self._error: MirrorError | None = None
        self._retries = 0
        self._renewed = False
        self._done = False

    def __aiter__(self) -> Attempts:
        return self

    async def __anext__(self) -> Attempts:
        if self._done:
            raise StopAsyncIteration
        error, self._error = self._error, None
        if error is not None:
            await self._before_retry(error)
        return self

    async def _before_retry(self, error: MirrorError) -> None:
        if isinstance(error, Unauthorized):
            if self._renewed or not await self._transport.auth.renew(error.used):
                raise error
            self._renewed = True
            return
        self._retries += 1
        policy = self._transport.policy
        delay = policy.in_place_delay(self._retries, error, rng=self._transport.rng)
        if delay is None:
            raise error
        log.info("retrying %s in %.2fs (retry %d of %d): %s", self._label, delay,
                 self._retries, policy.retries, error)
        await anyio.sleep(delay)

    def __enter__(self) -> Attempts:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None:
            self._done = True
            return False
        if isinstance(exc, Unauthorized) or retryable_in_place(exc):
            self._error = exc
            return True
        return False


class Transport:
    """The HTTP shell shared by every endpoint of one :class:`~mirror.tcia.TciaClient`."""

    def __init__(self, source: SourceSettings, *, policy: RetryPolicy,
                 rng: random.Random | None = None,
                 on_response: Callable[[str, int | str], None] | None = None) -> None:
        self.source = source
        #: Called with (endpoint label, HTTP status or "error") for every try, for metrics.
        self.on_response = on_response
        self.base_url = source.base_url.rstrip("/")
        self.policy = policy
        self.rng = rng
        self.limiter = RateLimiter(source.requests_per_second)
        self.auth: Auth = make_auth(source, self.post_form)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, auth={self.auth!r})"

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.source.max_connections,
                                         ssl=make_ssl_context(self.source.ca_bundle))
        # No total timeout: a multi-gigabyte ZIP may legitimately take hours. sock_connect
        # (not connect) so that waiting for a free pooled connection never times out.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.source.connect_timeout,
                                        sock_read=self.source.read_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, raise_for_status=False,
            headers={"Accept": "*/*", "User-Agent": USER_AGENT})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the TCIA client inside 'async with'")
        return self._session

    def url(self, wire_name: str) -> str:
        return f"{self.base_url}/{wire_name}"

    def attempts(self, label: str) -> Attempts:
        return Attempts(self, label)

    @asynccontextmanager
    async def response(self, label: str, method: str, url: str, *,
                       params: Mapping[str, str] | None = None,
                       data: Mapping[str, str] | None = None, use_auth: bool = True,
                       check: bool = True) -> AsyncIterator[aiohttp.ClientResponse]:
        """One try; with *check*, any non-2xx status raises its mapped error."""
        await self.limiter.acquire()
        headers = await self.auth.headers() if use_auth else {}
        try:
            resp = await follow(self.session, label, method, url, params=params, data=data,
                                headers=headers)
            try:
                if self.on_response is not None:
                    self.on_response(label, resp.status)
                if check and not 200 <= resp.status < 300:
                    body = await resp.content.read(ERROR_BODY_LIMIT)
                    raise status_error(label, resp.status, body, resp.headers, headers,
                                       max_retry_after=self.source.max_retry_after)
                yield resp
            finally:
                resp.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if self.on_response is not None:
                self.on_response(label, "error")
            raise client_error(label, exc) from exc

    def body(self, resp: aiohttp.ClientResponse, label: str, *,
             listing: bool) -> BodyReader:
        """A bounded reader of *resp*'s body (stall bound; size and time too for listings)."""
        limits = (BodyLimits.for_listing(self.source) if listing
                  else BodyLimits.for_download(self.source))
        return BodyReader(resp.content, label, limits, chunk=CHUNK)

    async def fetch(self, label: str, method: str, url: str, *,
                    params: Mapping[str, str] | None = None,
                    data: Mapping[str, str] | None = None) -> tuple[int, str, bytes]:
        """A whole (small) body with retries: (status, content type, body)."""
        async for attempt in self.attempts(label):
            with attempt:
                async with self.response(label, method, url, params=params,
                                         data=data) as resp:
                    reader, parts = self.body(resp, label, listing=True), []
                    while chunk := await reader.read():
                        parts.append(chunk)
                    return resp.status, resp.headers.get("Content-Type", ""), b"".join(parts)
        raise AssertionError("unreachable: attempts either returns or raises")

    async def post_form(self, url: str, form: dict[str, str]) -> tuple[int, bytes]:
        """For the token endpoint: retried on 5xx and connection errors, 4xx returned."""
        label = "token"
        async for attempt in self.attempts(label):
            with attempt:
                async with self.response(label, "POST", url, data=form, use_auth=False,
                                         check=False) as resp:
                    reader, body = self.body(resp, label, listing=False), b""
                    while len(body) < ERROR_BODY_LIMIT and (chunk := await reader.read()):
                        body += chunk  # the whole (small) answer, not what arrived first
                    if resp.status == 429 or resp.status >= 500:
                        raise status_error(label, resp.status, b"", resp.headers, {},
                                           max_retry_after=self.source.max_retry_after)
                    return resp.status, body
        raise AssertionError("unreachable: attempts either returns or raises")


