"""Catalog fixtures: an opened, migrated catalog on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mirror.catalog import Catalog


@pytest.fixture
async def catalog(catalog_url: str) -> AsyncIterator[Catalog]:
    """A migrated, empty catalog on SQLite and on Postgres."""
    opened = await Catalog.open(catalog_url)
    try:
        yield opened
    finally:
        await opened.close()
