"""Commit verified series in batches: a handful of set-based statements per transaction.

One-instance series finish by the hundred per second; per series, the old path cost
about ten statements in one transaction (SQLAlchemy building and compiling each, and
several thread hops per statement on SQLite). Here a batch of N series costs: one
SELECT of the leases, one DELETE of old instance rows, one INSERT executemany, one
UPDATE executemany, whatever N is. The statements are built once per catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection

from mirror.catalog import models
from mirror.catalog.records import LeaseLost
from mirror.catalog.store import utcnow
from mirror.domain import Event, InstanceRecord, SeriesState, transition

S, INST = models.series, models.instances


@dataclass(frozen=True, slots=True)
class Completion:
    """One verified series waiting for its catalog commit."""

    series_uid: str
    owner: str
    local_path: str
    instances: Sequence[InstanceRecord]
    verified_at: datetime


class CompletionStatements:
    """The batch statements for one catalog, built once (cached compiled SQL)."""

    def __init__(self, store: Any) -> None:
        self.postgres: bool = store._postgres
        self.insert = INST.insert()
        self.done = (
            update(S)
            .where(S.c.id == bindparam("b_id"), S.c.lease_owner == bindparam("b_owner"),
                   S.c.state == SeriesState.FETCHING)
            .values(local_path=bindparam("b_path"), local_bytes=bindparam("b_bytes"),
                    local_instance_count=bindparam("b_count"),
                    verified_at=bindparam("b_verified"), last_error=None,
                    state=transition(SeriesState.FETCHING, Event.COMPLETE), repair=False,
                    next_attempt_at=None, lease_owner=None, lease_expires_at=None,
                    needs_refetch=False))

        leases = select(S.c.id, S.c.series_uid, S.c.lease_owner, S.c.state, S.c.attempts,
                        S.c.needs_refetch).where(store._one_of_param(S.c.series_uid, "b_uids"))
        self.leases = leases.with_for_update() if self.postgres else leases
        self.delete_instances = delete(INST).where(
            store._one_of_param(INST.c.series_ref, "b_ids"))


def complete_batch(store: Any, conn: Connection,
                   batch: Sequence[Completion]) -> list[BaseException | None]:
    """Commit *batch* in the open write transaction *conn*; one outcome per request.

    A request whose lease is gone gets LeaseLost, one whose row is in a state that
    cannot complete gets IllegalTransition; neither writes anything for that series.
    A series re-discovered while it was fetched is recorded but queued again.
    """
    st: CompletionStatements = store._completion_statements()
    uids = store._one_of_value([c.series_uid for c in batch])
    rows = {r.series_uid: r for r in conn.execute(st.leases, {"b_uids": uids})}
    errors: list[BaseException | None] = []
    ok: list[tuple[Completion, Any]] = []
    for c in batch:
        row = rows.get(c.series_uid)
        if row is None or row.lease_owner != c.owner:
            errors.append(LeaseLost(f"series {c.series_uid} is no longer leased to {c.owner}"))
            continue
        try:
            transition(row.state, Event.COMPLETE)  # raises on an impossible state
        except Exception as exc:
            errors.append(exc)
            continue
        errors.append(None)
        ok.append((c, row))
    if not ok:
        return errors
    conn.execute(st.delete_instances, {"b_ids": store._one_of_value([row.id for _, row in ok])})
    new_rows = [{"series_ref": row.id, "sop_uid": i.sop_uid, "path": i.path, "size": i.size,
                 "md5": i.md5, "server_md5": i.server_md5} for c, row in ok for i in c.instances]
    if new_rows:
        conn.execute(st.insert, new_rows)
    plain = [(c, row) for c, row in ok if not row.needs_refetch]
    if plain:
        result = conn.execute(st.done, [_done_params(c, row) for c, row in plain])
        if result.rowcount not in (-1, len(plain)):  # rows are locked: be loud if it happens
            raise LeaseLost(f"{len(plain) - result.rowcount} series changed under their "
                            "lease holders")
    for c, row in ok:
        if row.needs_refetch:  # rare: the fetch may be stale, back to the queue
            _requeue(conn, c, row)
    return errors


def _requeue(conn: Connection, c: Completion, row: Any) -> None:
    result = conn.execute(
        update(S).where(S.c.id == row.id, S.c.lease_owner == c.owner, S.c.state == row.state)
        .values(**_local(c), state=transition(row.state, Event.RETRY),
                next_attempt_at=utcnow(), attempts=0, lease_owner=None,
                lease_expires_at=None, needs_refetch=False))
    if result.rowcount != 1:  # cannot happen while the row is locked; be loud if it does
        raise LeaseLost(f"series {row.id} changed under its lease holder {c.owner}")


def _local(c: Completion) -> dict[str, Any]:
    return {"local_path": c.local_path, "local_bytes": sum(i.size for i in c.instances),
            "local_instance_count": len(c.instances), "verified_at": c.verified_at,
            "last_error": None}


def _done_params(c: Completion, row: Any) -> dict[str, Any]:
    return {"b_id": row.id, "b_owner": c.owner, "b_path": c.local_path,
            "b_bytes": sum(i.size for i in c.instances), "b_count": len(c.instances),
            "b_verified": c.verified_at}
