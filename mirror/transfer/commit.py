"""Make a verified staging directory visible at its final path, atomically; clean staging.

A final path shows either the complete old version of a series or the complete new one,
never a mix and never a partial file: the whole directory is swapped by rename.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mirror.archive.layout import staging_root
from mirror.errors import StorageError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h
FSYNC_THREADS = 16


def commit_series_dir(staging_dir: Path, final_dir: Path) -> None:
    """Move the complete, verified *staging_dir* to *final_dir* (replacing an old version).

    The files and directories are fsynced first, so after a crash the final path holds
    either version whole. If *final_dir* exists it is swapped with one atomic
    ``renameat2(RENAME_EXCHANGE)`` where the kernel and file system support it; elsewhere
    with two renames, between which the final path is briefly absent (readers see no
    series, never a partial one; a crash there leaves both versions under ``.staging``,
    the catalog still says done, and ``verify`` reports the series missing).
    """
    [error] = commit_series_dirs([(staging_dir, final_dir)])
    if error is not None:
        raise error


def commit_series_dirs(moves: Sequence[tuple[Path, Path]]) -> list[StorageError | None]:
    """:func:`commit_series_dir` for several series at once; one outcome per move.

    The same steps and the same guarantees, each step for the whole batch: every file
    and staging directory fsynced (all at once, so the file system commits them in few
    journal transactions), new parent directories created, the renames, then every
    directory whose entries changed fsynced once, however many series share it. When
    this returns, what it reports as committed is durable.
    """
    errors: list[StorageError | None] = [None] * len(moves)

    def failed(i: int, exc: OSError) -> None:
        staging_dir, final_dir = moves[i]
        if errors[i] is None:
            errors[i] = StorageError(f"cannot commit {staging_dir} to {final_dir}: {exc}")

    syncs: list[tuple[int, str, bool]] = []  # (move, path, is a directory)
    for i, (staging_dir, _) in enumerate(moves):
        try:
            with os.scandir(staging_dir) as it:
                syncs += [(i, e.path, False) for e in it if e.is_file(follow_symlinks=False)]
            syncs.append((i, os.fspath(staging_dir), True))
        except OSError as exc:
            failed(i, exc)
    for (i, _, _), exc in zip(syncs, _fsync_all([(p, d) for _, p, d in syncs]), strict=True):
        if exc is not None:
            failed(i, exc)
    changed: dict[str, list[int]] = {}  # directory -> the moves that changed its entries
    for i, (staging_dir, final_dir) in enumerate(moves):
        if errors[i] is not None:
            continue
        try:
            for parent in _makedirs(final_dir.parent):
                changed.setdefault(os.fspath(parent), []).append(i)
            if not os.path.lexists(final_dir):
                os.rename(staging_dir, final_dir)
            else:
                _swap(staging_dir, final_dir)
        except OSError as exc:
            failed(i, exc)
            continue
        for parent in (final_dir.parent, staging_dir.parent):
            changed.setdefault(os.fspath(parent), []).append(i)
    dirs = list(changed)
    for path, exc in zip(dirs, _fsync_all([(d, True) for d in dirs]), strict=True):
        for i in changed[path] if exc is not None else ():
            failed(i, exc)
    return errors


def _fsync_all(paths: Sequence[tuple[str, bool]]) -> list[OSError | None]:
    """fsync every (path, is a directory), several in flight at once; one error per path.

    Several fsyncs in flight let the file system commit them in one journal transaction;
    one after the other, each waits for its own (ms per file).
    """
    if len(paths) <= 1:
        return [_fsync_path(p) for p in paths]
    return list(_fsync_pool().map(_fsync_path, paths))


@functools.cache
def _fsync_pool() -> ThreadPoolExecutor:
    """One pool for the process: starting threads per batch cost more than the fsyncs'
    own CPU (its threads start when first needed and wait idle between batches)."""
    return ThreadPoolExecutor(max_workers=FSYNC_THREADS, thread_name_prefix="fsync")


def _fsync_path(item: tuple[str, bool]) -> OSError | None:
    path, is_dir = item
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if is_dir else 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return exc
    return None


def _swap(staging_dir: Path, final_dir: Path) -> None:
    if _exchange(staging_dir, final_dir):
        old = staging_dir  # the exchange left the old version here
    else:
        old = staging_dir.with_name(f"{staging_dir.name}.old.{secrets.token_hex(4)}")
        os.rename(final_dir, old)
        try:
            os.rename(staging_dir, final_dir)
        except OSError:
            os.rename(old, final_dir)  # put the old version back before reporting
            raise
    _fsync_dir(final_dir.parent)
    # The new version is committed; an old copy that resists removal is only litter
    # under .staging, which clear_staging removes at the next start.
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False if this system cannot (then nothing changed)."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


@functools.cache
def _renameat2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing *fd*'s dirty pages to disk now, without waiting.

    Best effort (Linux ``sync_file_range``; elsewhere nothing): the fsync at commit still
    decides durability, but finds most pages already written instead of the whole series.
    """
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # errors ignored: the fsync reports real ones


@functools.cache
def _sync_file_range() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _fsync_dir(directory: Path) -> None:
    if (exc := _fsync_path((os.fspath(directory), True))) is not None:
        raise exc


def _makedirs(path: Path) -> list[Path]:
    """mkdir -p; the parents of the directories it created (to be fsynced by the caller)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
    return [new.parent for new in reversed(missing)]


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link *src* to *dst* (an unchanged instance kept in a new version); copy if needed."""
    try:
        os.link(src, dst)
        return
    except FileExistsError as exc:
        raise StorageError(f"cannot link {src}: {dst} exists") from exc
    except OSError:
        pass  # other device, no hard links on this file system, link limit: copy instead
    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise StorageError(f"cannot copy {src} to {dst}: {exc}") from exc


def clear_staging(root: Path, *, older_than: float | None = None) -> int:
    """Remove what earlier runs left in ``<root>/.staging``; the number of entries removed.

    With *older_than* (seconds), entries modified more recently are kept: use it when
    other processes may be staging into the same archive root right now.
    """
    base = staging_root(root)
    if base.is_symlink():
        raise StorageError(f"{base} is a symbolic link; refusing to clear it")
    try:
        with os.scandir(base) as it:
            entries = list(it)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise StorageError(f"cannot list {base}: {exc}") from exc
    now, removed = time.time(), 0
    for entry in entries:
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if older_than is not None and age < older_than:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue  # gone meanwhile
        except OSError as exc:
            raise StorageError(f"cannot remove {entry.path}: {exc}") from exc
        removed += 1
    return removed


def write_atomic(path: Path, data: bytes, *, tmp_dir: Path | None = None) -> None:
    """Write one small file whole: a unique temp file (in *tmp_dir*, same file system,
    else next to *path*), fsync, rename, fsync the directory. A reader sees the old file
    or the new one, never a part; concurrent writers never share a temp file."""
    where = tmp_dir or path.parent
    tmp: Path | None = None
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=where, prefix=f".{path.name}.", suffix=".part")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
