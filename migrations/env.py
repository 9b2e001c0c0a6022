"""Alembic environment: async engines for SQLite and Postgres, shared with the program.

``mirror.catalog.migrate`` passes an open connection in ``config.attributes``; the
``alembic`` command line gets its URL from ``-x url=...``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from mirror.catalog import engine as catalog_engine
from mirror.catalog import models

config = context.config


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=models.metadata,
        compare_type=True,
        **kwargs,
    )


def run_on(connection: Connection) -> None:
    # SQLite cannot ALTER most things: batch mode recreates tables instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the catalog URL: alembic -x url=... <command>")
    return url


async def _run_async(url: str) -> None:
    engine = catalog_engine.create_engine(url)
    try:
        async with catalog_engine.writer(engine).begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
    elif context.is_offline_mode():
        _configure(url=_url(), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_async(_url()))


main()
