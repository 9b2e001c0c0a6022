"""The real TciaClient, Catalog and RateLimiter satisfy the sync engine's Protocols.

mypy checks tests/sync/ports_conform.py (assignments of the real classes to the
Protocol types) together with the modules that use the ports; skipped where mypy is
not installed (it is no dependency of the project).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
CHECKED = ["tests/sync/ports_conform.py", "mirror/sync/ports.py", "mirror/sync/job.py",
           "mirror/sync/pool.py", "mirror/sync/hashcheck.py", "mirror/sync/seriesdir.py",
           "mirror/sync/completeness.py", "mirror/sync/outcome.py", "mirror/retry.py",
           "mirror/tcia/transport.py", "mirror/tcia/studyfields.py"]


def test_real_classes_satisfy_the_ports(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    # --no-site-packages: third-party types count as Any (ours are what is checked), which
    # keeps a cold run to seconds instead of type-checking SQLAlchemy and aiohttp
    out, err, status = api.run(["--no-site-packages", "--ignore-missing-imports",
                                "--follow-imports=silent",
                                "--cache-dir", str(tmp_path / "mypy"),
                                *[str(ROOT / p) for p in CHECKED]])
    assert status == 0, out + err
