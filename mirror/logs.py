"""structlog setup: JSON lines off a terminal, readable lines on one; secrets never logged.

Off a terminal structlog is imported without rich: structlog's console renderer looks
for rich at import time (for pretty tracebacks), and loading rich and pygments cost a
no-op sync a sixth of its start-up, for a renderer that is not used (JSON lines are).
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from mirror.domain import printable

if TYPE_CHECKING:
    from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger


#: What structlog's console renderer imports if it can (tracebacks, colours on Windows).
_TERMINAL_ONLY = ("rich", "colorama")


def _import_structlog() -> ModuleType:
    """``import structlog``, hiding rich and colorama from it unless stderr is a terminal."""
    stderr = sys.stderr
    if ("structlog" in sys.modules or "rich" in sys.modules
            or (stderr is not None and stderr.isatty())):
        return importlib.import_module("structlog")
    hidden = [name for name in _TERMINAL_ONLY if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` fails inside
    try:
        return importlib.import_module("structlog")
    finally:
        for name in hidden:
            del sys.modules[name]


structlog = _import_structlog()


_SECRET_KEYS = {"password", "api_key", "token", "access_token", "refresh_token",
                "authorization"}


def _redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
    return event


def _escape_controls(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Log values often carry server text: no ESC sequence reaches a terminal through them."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = printable(value)
    return event


def configure(*, json: bool | None = None, level: int = logging.INFO) -> None:
    """Log to stderr; *json* None means JSON unless stderr is a terminal."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Processor = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            _escape_controls,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(level)


class _ToStructlog(logging.Handler):
    """Sends the standard-library records of ``mirror.*`` (the client's retries) to structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        structlog.get_logger(record.name).log(record.levelno, record.getMessage())


def _route_stdlib(level: int) -> None:
    logger = logging.getLogger("mirror")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, _ToStructlog)]
    logger.addHandler(_ToStructlog())
    logger.setLevel(level)
    logger.propagate = False


def get(name: str = "tcia-mirror") -> FilteringBoundLogger:
    """The logger every module logs through (configured by :func:`configure`)."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
