"""Catalog URLs read without SQLAlchemy: parse, check the driver, hide the password.

``tcia-mirror status`` and the config checks run before (or instead of) any engine, and
importing SQLAlchemy alone costs more than the whole status command may. The grammar is
SQLAlchemy's own (``make_url``), so both agree on every URL; a test compares them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, unquote

from mirror.errors import ConfigError

#: The two catalog drivers (see :mod:`mirror.catalog.engine`).
DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")

#: SQLAlchemy's URL pattern (sqlalchemy.engine.url._parse_url), verbatim.
_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
        """,
    re.X,
)


class BadUrl(ValueError):
    """The text is not a database URL at all."""


@dataclass(frozen=True)
class DbUrl:
    """The parts of a database URL, as ``sqlalchemy.engine.URL`` holds them."""

    drivername: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: dict[str, str | tuple[str, ...]] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql`` (the part before ``+``)."""
        return self.drivername.split("+", 1)[0]

    def render(self) -> str:
        """The URL with the password shown as ``***`` (``render_as_string(hide_password=True)``)."""
        s = self.drivername + "://"
        if self.username is not None:
            s += quote(self.username, safe=" +")
            if self.password is not None:
                s += ":***"
            s += "@"
        if self.host is not None:
            s += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            s += ":" + str(self.port)
        if self.database is not None:
            s += "/" + quote(self.database, safe=" +/")
        if self.query:
            s += "?" + "&".join(
                f"{quote_plus(k)}={quote_plus(element)}"
                for k in sorted(self.query)
                for element in _as_list(self.query[k]))
        return s


def _as_list(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def make(text: str) -> DbUrl:
    """*text* parsed like ``sqlalchemy.engine.make_url``; BadUrl when it does not match,
    ValueError when the port is not a number (as SQLAlchemy raises)."""
    m = _PATTERN.match(text)
    if m is None:
        raise BadUrl("Could not parse SQLAlchemy URL from given URL string")
    parts = m.groupdict()
    query: dict[str, str | tuple[str, ...]] = {}
    if parts["query"] is not None:
        for key, value in parse_qsl(parts["query"]):
            if key in query:
                query[key] = (*_as_list(query[key]), value)
            else:
                query[key] = value
    username, password, database = (
        None if parts[k] is None else unquote(parts[k]) for k in ("username", "password",
                                                                  "database"))
    return DbUrl(
        drivername=parts["name"], username=username, password=password,
        host=parts["ipv4host"] or parts["ipv6host"],
        port=None if parts["port"] is None else int(parts["port"]),  # "" fails as in SQLAlchemy
        database=database, query=query)


def parse(url: str) -> DbUrl:
    """The catalog URL, or a ConfigError naming the key (as ``engine.parse_url``)."""
    try:
        parsed = make(url)
    except ValueError as exc:  # BadUrl, or a port that is no number
        raise ConfigError(f"catalog.url: cannot parse {url!r}") from exc
    if parsed.drivername not in DRIVERS:
        raise ConfigError(
            "catalog.url: must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return parsed


def safe(url: str | DbUrl) -> str:
    """The URL with its password hidden, for messages and logs (as ``engine.safe_url``)."""
    if isinstance(url, DbUrl):
        return url.render()
    try:
        return make(url).render()
    except BadUrl:
        return "<unparseable catalog url>"


def sqlite_file(url: DbUrl) -> Path | None:
    """The database file of a SQLite URL (None for Postgres and in-memory SQLite)."""
    if url.backend != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)  # type: ignore[arg-type]


def valid(url: str) -> bool:
    """What the config checks accept: it parses; Postgres has a host and a port in range."""
    try:
        parsed = make(url)
    except (BadUrl, ValueError, TypeError):
        return False
    if parsed.drivername.startswith("sqlite"):
        return True
    return bool(parsed.host) and (parsed.port is None or 0 < parsed.port < 65536)
