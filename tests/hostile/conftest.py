"""Fixtures shared by the hostile-server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.hostile_server import HostileServer, serve


@pytest.fixture
def server() -> Iterator[HostileServer]:
    """A scripted hostile NBIA v4 server on 127.0.0.1 (its series set by each test)."""
    with serve(HostileServer()) as srv:
        yield srv
