"""``tcia-mirror worker``: download-only, claiming queued series of every collection it shares.

It is the daemon's loop (:mod:`mirror.run.daemon`) without the scheduler, /healthz or
the status page: another host's daemon discovers, this one downloads.
"""

from __future__ import annotations

from mirror.config.settings import Settings
from mirror.run import daemon


async def run_worker(settings: Settings) -> int:
    """Download until a signal stops it (exit 0)."""
    return await daemon.run(settings, with_workers=True, with_scheduler=False)
