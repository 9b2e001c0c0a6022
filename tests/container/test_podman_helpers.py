"""The container test's own plumbing: which Debian mirror the base image comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.container.podman import DEFAULT_DEBIAN_MIRROR, debian_mirror


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("sources.list", "# c\ndeb http://mirror.example/debian bookworm main\n"
     "deb http://security.debian.org/debian-security bookworm-security main\n",
     "http://mirror.example/debian"),
    ("sources.list", "deb [arch=amd64 signed-by=/k.gpg] https://m.example/debian/ bookworm main\n",
     "https://m.example/debian"),
    ("sources.list.d/debian.sources",
     "Types: deb\nURIs: http://deb822.example/debian-security\nSuites: bookworm-security\n\n"
     "Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm\n",
     "http://deb822.example/debian"),
    ("sources.list.d/other.list", "deb https://packages.example/apt stable main\n",
     DEFAULT_DEBIAN_MIRROR),
])
def test_debian_mirror_comes_from_apt_sources(tmp_path: Path, name: str, text: str,
                                              expected: str) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / name).write_text(text)
    assert debian_mirror(tmp_path) == expected
