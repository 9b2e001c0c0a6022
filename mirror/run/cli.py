"""The ``tcia-mirror`` command line: parses flags, runs the event loop, maps errors to exit codes.

This is the only module that calls ``anyio.run``. Commands delegate to the service
layer; every :class:`~mirror.errors.MirrorError` becomes one clear line on stderr and
its exit code (0 in sync, 1 some series failed, 2 bad usage/config, 3 source
unreachable or auth refused, 130 interrupted).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import anyio
import click

from mirror.config.settings import Settings, load_settings
from mirror.errors import Interrupted, MirrorError, UsageError, most_meaningful, redact

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False),
    help="TOML config file (default: ./tcia-mirror.toml if present).")


def _settings(config_path: str | None, **overrides: dict[str, Any]) -> Settings:
    cleaned = {sec: {k: v for k, v in keys.items() if v is not None}
               for sec, keys in overrides.items()}
    return load_settings(config_path, overrides={k: v for k, v in cleaned.items() if v})


def _run(func: Callable[..., Any], *args: Any) -> Any:
    """Run *func* on the event loop; turn errors into messages and exit codes."""
    try:
        result = anyio.run(_guarded, func, *args)
    except KeyboardInterrupt:
        _fail(Interrupted())
    except MirrorError as exc:
        _fail(exc)
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


async def _guarded(func: Callable[..., Any], *args: Any) -> Any:
    try:
        return await func(*args)
    except (Exception, BaseExceptionGroup) as exc:  # the last resort
        failure = _Failure.of(exc)
    watchdog = threading.Timer(CLEANUP_BOUND, failure.exit_now)
    watchdog.daemon = True
    watchdog.start()
    return failure


def _fail(exc: MirrorError) -> NoReturn:
    _Failure(exc.message, exc.exit_code).exit()


class _Group(click.Group):
    """Bad usage exits 2 with one line; our own errors raised while parsing do too."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MirrorError as exc:
            _fail(exc)
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort):
            raise
        except Exception as exc:  # no traceback ever reaches a user
            _Failure.of(exc).exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tcia-mirror")
def cli() -> None:
    """Keep a local copy of The Cancer Imaging Archive incrementally in sync."""


@cli.command()
@CONFIG_OPTION
@click.option("--collection", "collections", multiple=True,
              help="Collection to sync (repeatable; default: [sync] collections).")
@click.option("--manifest", "manifests", multiple=True, metavar="F.tcia",
              help="Mirror exactly the series of this NBIA .tcia manifest (repeatable; "
                   "default: [sync] manifests). Without --collection, only manifests are synced.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--reconcile", is_flag=True, help="Full listing of every collection now.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def sync(config_path: str | None, collections: tuple[str, ...], manifests: tuple[str, ...],
         dry_run: bool, reconcile: bool, as_json: bool) -> None:
    """One-shot catch-up: discover, download, verify, commit, then exit."""
    from mirror.run import oneshot

    if manifests and not collections:
        collections = ()  # --manifest alone narrows the run like --collection does
    settings = _settings(config_path, sync={
        "collections": collections if collections or manifests else None,
        "manifests": manifests or None})
    code = _run(oneshot.run_sync, settings, oneshot.SyncOptions(
        dry_run=dry_run, reconcile=reconcile, as_json=as_json))
    sys.exit(code)


@cli.command()
@CONFIG_OPTION
@click.option("--no-workers", is_flag=True, help="Run only the scheduler (workers elsewhere).")
def daemon(config_path: str | None, no_workers: bool) -> None:
    """Long-running: scheduler, worker pool, /healthz and /metrics."""
    from mirror.run import oneshot

    settings = _settings(config_path)
    sys.exit(_run(oneshot.run_daemon, settings, not no_workers))


@cli.command()
@CONFIG_OPTION
def worker(config_path: str | None) -> None:
    """Download-only worker claiming queued series from a shared catalog."""
    from mirror.run import oneshot

    settings = _settings(config_path)
    sys.exit(_run(oneshot.run_worker, settings))


@cli.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--failed", "failed", is_flag=True,
              help="List the failed series with their last error instead.")
def status(config_path: str | None, as_json: bool, failed: bool) -> None:
    """Per collection: series total / done / queued / failed, bytes, last poll, watermark."""
    from mirror.catalog import status as catalog_status

    settings = _settings(config_path)
    if failed:
        data = _run(catalog_status.collect_overview, settings.catalog.url)
        click.echo(catalog_status.render_failed(data["failed"], as_json=as_json))
        return
    rows = _run(catalog_status.collect, settings.catalog.url)
    click.echo(catalog_status.render(rows, as_json=as_json))


@cli.command()
@CONFIG_OPTION
@click.option("--repair", is_flag=True, help="Re-queue what is wrong; the next sync fixes it.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
@click.option("--collection", "collections", multiple=True,
              help="Check only this collection (repeatable; default: all the catalog holds).")
def verify(config_path: str | None, repair: bool, as_json: bool,
           collections: tuple[str, ...]) -> None:
    """Re-check the archive against the catalog (presence, size, MD5, DICOM UIDs)."""
    from mirror.run import oneshot

    settings = _settings(config_path)
    sys.exit(_run(oneshot.run_verify, settings, repair, as_json, collections))


@cli.command(context_settings={"ignore_unknown_options": False})
@CONFIG_OPTION
@click.argument("endpoint")
@click.argument("params", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "table"]), default="json",
              show_default=True)
@click.option("--base-url", help="Override [source] base_url.")
@click.option("--api", type=click.Choice(["v3", "nbia-v1", "nbia-v4"]),
              help="Override [source] api.")
def query(config_path: str | None, endpoint: str, params: tuple[str, ...], fmt: str,
          base_url: str | None, api: str | None) -> None:
    """Call any TCIA ENDPOINT with Key=Value parameters and print the result."""
    from mirror.tcia import query as tcia_query

    pairs: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"query parameter {item!r} must be Key=Value")
        pairs[key] = value
    settings = _settings(config_path, source={"base_url": base_url, "api": api})
    text = _run(tcia_query.run_query, settings.source, endpoint, pairs, fmt)
    click.echo(text, nl=not text.endswith("\n"))


@cli.group()
def db() -> None:
    """Catalog database administration."""


@db.command("upgrade")
@CONFIG_OPTION
def db_upgrade(config_path: str | None) -> None:
    """Apply Alembic migrations to the configured catalog."""
    from mirror.catalog import migrate

    settings = _settings(config_path)
    _run(migrate.upgrade, settings.catalog.url)
    click.echo("catalog is at the latest schema revision")


@cli.group()
def manifest() -> None:
    """NBIA .tcia manifests."""


@manifest.command("export")
@CONFIG_OPTION
@click.option("--collection", "collections", multiple=True,
              help="Only this collection (repeatable; default: the whole archive).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (atomically) instead of stdout.")
def manifest_export(config_path: str | None, collections: tuple[str, ...],
                    output: str | None) -> None:
    """Write what the archive holds as a .tcia manifest (NBIA Data Retriever, tcia-utils)."""
    from pathlib import Path

    from mirror.sync.manifest import format_manifest
    from mirror.sync.manifest_discovery import exported_uids
    from mirror.transfer.commit import write_atomic

    settings = _settings(config_path)
    uids = _run(exported_uids, settings.catalog.url, list(collections) or None)
    basket = Path(output).name if output else "tcia-mirror-export.tcia"
    text = format_manifest(uids, databasket_id=basket)
    if output:
        _run(anyio.to_thread.run_sync, write_atomic, Path(output), text.encode())
        click.echo(f"wrote {len(uids)} series to {output}", err=True)
    else:
        click.echo(text, nl=False)


def _register_simulate() -> None:
    from mirror.simulator.cli import simulate

    cli.add_command(simulate)


_register_simulate()


def main() -> None:
    cli(prog_name="tcia-mirror")
