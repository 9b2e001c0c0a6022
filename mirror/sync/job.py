"""The per-series job: adopt what is on disk, repair instance by instance, or take the ZIP.

Decision per series (the cheapest way to an exact copy):
- nothing usable on disk -> whole ZIP (getImageWithMD5Hash when verify = "md5" and
  the dialect has it, else getImage);
- files on disk -> getSOPInstanceUIDs; if they are exactly the wanted set, adopt them
  (no download); if at most half are missing, getSingleImage the missing ones; else ZIP;
- a repair that does not verify, or SOP endpoints that refuse or keep failing -> ZIP;
- queued by the hash check: stored instances whose MD5 differs from the server's are
  not kept (:func:`mirror.sync.hashcheck.suspect_instances`).

The job sees a :class:`JobContext` (settings it needs, the catalog and client ports,
its lease owner, the progress display, the retry policy), never the pool, so it runs
alone behind fakes. What is complete is decided by :mod:`mirror.archive.completeness`,
whether a failure is retried by :class:`mirror.retry.RetryPolicy`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import anyio

from mirror import transfer
from mirror.archive import completeness, layout
from mirror.catalog.records import ClaimedSeries
from mirror.config.settings import Settings
from mirror.domain import InstanceRecord, Uid, printable
from mirror.errors import ApiError, MirrorError, VerificationError
from mirror.retry import RetryPolicy
from mirror.sync import hashcheck, seriesdir, threadbatch
from mirror.sync.outcome import FetchMode, Outcome
from mirror.sync.ports import JobCatalog, ProgressDisplay, SeriesSource
from mirror.sync.threadbatch import ThreadBatch
from mirror.transfer import ExtractedInstance

#: Repair instance by instance only while at most this share of the series is missing.
REPAIR_MAX_MISSING = 0.5
#: What to do with the files on disk: keep them all, fetch the missing ones, or neither.
SopPlan = Literal["adopt", "repair", "zip"]


@dataclass(frozen=True)
class JobContext:
    """What a series job needs: where the archive is, how to verify, whom to ask, who it is."""

    root: Path
    layout: str
    verify_md5: bool  #: ``[sync] verify = "md5"``
    catalog: JobCatalog
    client: SeriesSource
    owner: str
    policy: RetryPolicy
    progress: ProgressDisplay | None = None
    #: told (series UID) when a series' download is over: its worker may start the next
    downloaded: Callable[[str], None] | None = None
    #: the file-system steps before a download, of all the jobs of a run, batched
    prepares: ThreadBatch[threadbatch.Call[tuple[Path, Path, bool]],
                          tuple[Path, Path, bool]] = field(
        default_factory=lambda: ThreadBatch(threadbatch.calls))
    #: extract-verify-commit of downloaded ZIPs, batched (their fsyncs go together)
    commits: ThreadBatch[seriesdir.ZipCommit, seriesdir.ZipCommitted] = field(init=False)
    #: collection -> the LICENSE text stored this run
    licenses: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        licenses = self.licenses
        object.__setattr__(self, "commits", ThreadBatch(
            lambda batch: seriesdir.commit_zips(batch, licenses)))

    @classmethod
    def from_settings(cls, settings: Settings, *, catalog: JobCatalog, client: SeriesSource,
                      owner: str, policy: RetryPolicy,
                      progress: ProgressDisplay | None = None,
                      downloaded: Callable[[str], None] | None = None) -> JobContext:
        return cls(root=Path(settings.archive.root), layout=settings.archive.layout,
                   verify_md5=settings.sync.verify == "md5", catalog=catalog, client=client,
                   owner=owner, policy=policy, progress=progress, downloaded=downloaded)


async def process_series(ctx: JobContext, item: ClaimedSeries) -> Outcome:
    """Fetch, verify and commit *item*; record the outcome in the catalog.

    A cancelled attempt gives the series back (``release``) and the cancel goes on.
    """
    started = time.monotonic()
    root = ctx.root
    outcome = Outcome(item.series_uid, item.collection, "done", attempt=item.attempts)
    staging: Path | None = None
    try:
        # one thread hop for all the file-system work before the download
        staging_dir, final, on_disk = await ctx.prepares.submit(
            (seriesdir.prepare, (root, ctx.layout, item)))
        staging = staging_dir
        mode, instances = await _fetch(ctx, item, final, staging_dir, on_disk)
        if mode == "full":
            staging = None  # the commit hop removed it already
        await ctx.catalog.complete(
            item.series_uid, ctx.owner, local_path=str(final.relative_to(root)),
            instances=instances, verified_at=datetime.now(UTC))
        outcome.mode = mode
        outcome.instances = len(instances)
        outcome.bytes = sum(i.size for i in instances)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await ctx.catalog.release(item.series_uid, ctx.owner)
        raise
    except MirrorError as exc:
        # Messages quote server text (names, bodies): escaped once here, they are safe in
        # the catalog's last_error, in status, in the JSON summary and on a terminal.
        outcome.error = printable(f"{type(exc).__name__}: {exc}")
        retry_at = ctx.policy.next_attempt(item.attempts, now=datetime.now(UTC), error=exc)
        try:
            await ctx.catalog.fail(item.series_uid, ctx.owner, error=outcome.error,
                                   retry_at=retry_at)
            outcome.status = "failed" if retry_at is None else "retry"
        except MirrorError:
            outcome.status = "lost"
    finally:
        if staging is not None:
            await anyio.to_thread.run_sync(shutil.rmtree, staging, True)
    outcome.seconds = time.monotonic() - started
    return outcome


async def _fetch(ctx: JobContext, item: ClaimedSeries, final: Path, staging: Path,
                 on_disk: bool) -> tuple[FetchMode, list[InstanceRecord]]:
    root = ctx.root
    present: dict[str, ExtractedInstance] = {}
    known: dict[str, InstanceRecord] = {}
    spelled: dict[str, str] = {}
    if on_disk:  # a new series costs no catalog read
        known = {i.sop_uid: i for i in await ctx.catalog.instances(item.series_uid)}
        present = await anyio.to_thread.run_sync(seriesdir.intact_on_disk, final, item, known)
        # queued by the hash check: files whose bytes changed upstream are not intact
        suspects, spelled = await hashcheck.suspect_instances(ctx.client, item, known)
        for sop in suspects if suspects is not None else list(present):
            present.pop(sop, None)
            known.pop(sop, None)
    if present:
        done = await _sop_level(ctx, item, final, staging, present, known)
        if done is not None:
            return done[0], seriesdir.records(root, final, done[1], spelled)
    got, spelled = await _full(ctx, item, final, staging)
    return "full", seriesdir.records(root, final, got, spelled)


async def _sop_level(ctx: JobContext, item: ClaimedSeries, final: Path, staging: Path,
                     present: dict[str, ExtractedInstance], known: dict[str, InstanceRecord],
                     ) -> tuple[FetchMode, list[ExtractedInstance]] | None:
    """Adopt or repair what is on disk, instance by instance; None: take the whole ZIP."""
    try:
        wanted = await ctx.client.get_sop_instance_uids(item.series_uid)
        plan = sop_plan(wanted, present, _counts_match(item, present.values()))
        if plan == "adopt":
            return "adopt", await _adopt(final, staging, present)
        if plan == "zip":
            return None
        missing = [s for s in wanted if s not in present]
        return "repair", await _repair(ctx, item, final, staging, present, wanted, missing,
                                       known)
    except VerificationError:
        # An instance changed upstream under the same SOP UID, or one came damaged:
        # repeating the repair would fail the same way, the whole ZIP settles it.
        return None
    except ApiError as exc:
        if not zip_after_sop_error(exc, item.attempts):
            raise
        return None


def sop_plan(wanted: Sequence[str], present: Collection[str], counts_match: bool) -> SopPlan:
    """Adopt the files on disk when they are exactly the wanted set (and add up), repair
    while at most :data:`REPAIR_MAX_MISSING` of the wanted instances are missing, else
    take the ZIP (also when the server lists no instance at all)."""
    if wanted and set(wanted) == set(present) and counts_match:
        return "adopt"
    missing = [s for s in wanted if s not in present]
    if not wanted or len(missing) > REPAIR_MAX_MISSING * len(wanted):
        return "zip"
    return "repair"


def zip_after_sop_error(exc: ApiError, attempts: int) -> bool:
    """Whether a failed SOP-level request sends this attempt to the ZIP (else: raise it,
    the series is retried). The SOP endpoints fail for whole deployments at times (NLST,
    late 2024): after a refusal, or when they fail a second attempt, the ZIP is the way."""
    return not (exc.transient and attempts < 2)


async def _adopt(final: Path, staging: Path,
                 present: dict[str, ExtractedInstance]) -> list[ExtractedInstance]:
    """Keep the complete copy on disk; drop foreign files from its directory, if any.

    verify reports such files as damage ("extra") and --repair re-queues the series, so
    adopting must also clean them, atomically like every other change to a series dir.
    """
    keep = list(present.values())
    names = await anyio.to_thread.run_sync(seriesdir.entry_names, final)
    if names == {i.filename for i in keep}:
        return keep
    files = await anyio.to_thread.run_sync(seriesdir.fresh_dir, staging / "adopt")
    await anyio.to_thread.run_sync(seriesdir.link_all, final, files, keep)
    await anyio.to_thread.run_sync(transfer.commit_series_dir, files, final)
    return keep


def _counts_match(item: ClaimedSeries, instances: Iterable[ExtractedInstance]) -> bool:
    return completeness.counts_match(item.image_count, item.file_size, instances)


async def _full(ctx: JobContext, item: ClaimedSeries, final: Path,
                staging: Path) -> tuple[list[ExtractedInstance], dict[str, str]]:
    md5 = ctx.verify_md5 and ctx.client.has_md5
    zip_path = staging / "series.zip"
    sink = transfer.HashingFile(zip_path, hashing=False)  # entries are hashed on extraction
    try:
        await ctx.client.download_image(item.series_uid, sink, md5=md5,
                                        progress=_progress(ctx, item))
    finally:
        sink.close()
        if ctx.downloaded is not None:
            ctx.downloaded(item.series_uid)
    files = staging / "files"
    expected = transfer.ExpectedSeries(
        series_uid=item.series_uid, study_uid=item.study_uid, image_count=item.image_count,
        file_size=item.file_size, md5_source=md5)
    return await ctx.commits.submit(seriesdir.ZipCommit(
        zip_path, files, final, staging, expected, ctx.root, item.collection))


async def _repair(ctx: JobContext, item: ClaimedSeries, final: Path, staging: Path,
                  present: dict[str, ExtractedInstance], wanted: list[str], missing: list[str],
                  known: dict[str, InstanceRecord]) -> list[ExtractedInstance]:
    files = await anyio.to_thread.run_sync(seriesdir.fresh_dir, staging / "repair")
    keep = [present[s] for s in wanted if s in present]
    await anyio.to_thread.run_sync(seriesdir.link_all, final, files, keep)
    got = list(keep)
    for sop in missing:
        tmp = layout.staging_part(staging, Uid(sop))
        sink = transfer.HashingFile(tmp)
        try:
            await ctx.client.download_single_image(item.series_uid, sop, sink,
                                                   progress=_progress(ctx, item))
        finally:
            sink.close()
        completeness.check_known_md5(item.series_uid, sop, sink.md5, known)
        if ctx.verify_md5:
            completeness.check_server_md5(item.series_uid, sop, sink.md5,
                                          await ctx.client.get_md5_hash_for_image(sop))
        got.append(await anyio.to_thread.run_sync(seriesdir.store_single, tmp, files, item,
                                                  sop, sink.md5))
    completeness.check_repaired(item.series_uid, list(got), wanted,
                                image_count=item.image_count, file_size=item.file_size)
    await anyio.to_thread.run_sync(transfer.commit_series_dir, files, final)
    return got


def _progress(ctx: JobContext, item: ClaimedSeries) -> Callable[[int], None] | None:
    if ctx.progress is None:
        return None
    return ctx.progress.callback(item)
