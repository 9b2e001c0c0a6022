"""How a command ends: errors become one line on stderr and an exit code, never a traceback.

Every :class:`~mirror.errors.MirrorError` maps to its exit code (0 in sync, 1 some series
failed, 2 bad usage/config, 3 source unreachable or auth refused, 130 interrupted);
anything else is a last-resort one-liner with exit 1. :func:`run` is the only caller of
``anyio.run``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import click

from mirror.errors import Interrupted, MirrorError, most_meaningful, redact

T = TypeVar("T")


def run(func: Callable[..., Awaitable[T]], *args: object) -> T:
    """Run *func* on the event loop; turn errors into messages and exit codes."""
    import anyio  # not for --help

    try:
        result = anyio.run(_guarded, func, *args)
    except KeyboardInterrupt:
        fail(Interrupted())
    except MirrorError as exc:
        fail(exc)
    if isinstance(result, _Failure):
        result.exit()
    return result


#: Seconds the event loop's own clean-up may take after a failure. A task group that
#: failed mid-statement can leave a database driver's close waiting on a thread that is
#: gone (aiosqlite under SQLAlchemy's terminate); the error is known by then, so it is
#: printed and the process ends instead of hanging with no message.
CLEANUP_BOUND = 10.0


@dataclass(frozen=True)
class _Failure:
    """What is left of an error once it has been logged: one line and an exit code.

    It is made inside the event loop and holds no exception, so no failed frame (and no
    connection it references) outlives the loop; the loop's own clean-up is bounded by
    :data:`CLEANUP_BOUND`.
    """

    message: str
    exit_code: int

    @classmethod
    def of(cls, exc: BaseException) -> _Failure:
        """The last-resort handler: flatten an ExceptionGroup to the error that matters."""
        # the whole story goes to the log at debug level only (routed to structlog once
        # a command configured logging; before that, Python drops debug records)
        logging.getLogger("mirror.run.cli").debug(
            "error detail: %s", redact("".join(traceback.format_exception(exc))))
        leaf = most_meaningful(exc)
        if isinstance(leaf, MirrorError):
            return cls(leaf.message, leaf.exit_code)
        text = " ".join(redact(str(leaf)).split()) or "no detail"
        return cls(f"unexpected {type(leaf).__name__}: {text}", 1)

    def line(self) -> str:
        return f"tcia-mirror: error: {' '.join(self.message.split())}"

    def exit(self) -> NoReturn:
        click.echo(self.line(), err=True)
        sys.exit(self.exit_code)

    def exit_now(self) -> None:
        """Called by the clean-up watchdog: the loop did not finish closing in time."""
        sys.stdout.flush()
        sys.stderr.write(self.line() + "\n")
        sys.stderr.flush()
        os._exit(self.exit_code)


async def _guarded(func: Callable[..., Awaitable[T]], *args: object) -> T | _Failure:
    try:
        return await func(*args)
    except (Exception, BaseExceptionGroup) as exc:  # the last resort
        failure = _Failure.of(exc)
    watchdog = threading.Timer(CLEANUP_BOUND, failure.exit_now)
    watchdog.daemon = True
    watchdog.start()
    return failure


def fail(exc: MirrorError) -> NoReturn:
    _Failure(exc.message, exc.exit_code).exit()


class Group(click.Group):
    """Bad usage exits 2 with one line; our own errors raised while parsing do too, and
    so do those of a command's synchronous work (``status``); Ctrl-C is ``Interrupted``."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            fail(Interrupted())
        except MirrorError as exc:
            fail(exc)
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort):
            raise
        except Exception as exc:  # no traceback ever reaches a user
            _Failure.of(exc).exit()
