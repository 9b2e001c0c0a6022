"""The real TciaClient, Catalog and RateLimiter satisfy the sync engine's Protocols.

mypy checks tests/sync/ports_conform.py (assignments of the real classes to the
Protocol types) together with every module of the sync path, so each call across a
seam is checked against the real classes (mypy is a test dependency; the test skips
only where it is missing).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
#: the sync path (engine, ways to run it, archive rules) and the wire modules it calls:
#: every seam between them is checked, not only the job's
CHECKED = ["tests/sync/ports_conform.py", "mirror/retry.py", "mirror/tcia/transport.py",
           "mirror/tcia/studyfields.py",
           *sorted(str(p.relative_to(ROOT)) for package in ("sync", "run", "archive")
                   for p in (ROOT / "mirror" / package).glob("*.py"))]


def test_real_classes_satisfy_the_ports(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    # --no-site-packages: third-party types count as Any (ours are what is checked), which
    # keeps a cold run to seconds instead of type-checking SQLAlchemy and aiohttp
    out, err, status = api.run(["--no-site-packages", "--ignore-missing-imports",
                                "--follow-imports=silent",
                                "--cache-dir", str(tmp_path / "mypy"),
                                *[str(ROOT / p) for p in CHECKED]])
    assert status == 0, out + err
