"""metadata.csv's catalog reads: the first stored instance of many series at once, SOP classes."""

from __future__ import annotations

from mirror.catalog import Catalog
from mirror.domain import InstanceRecord, SeriesState
from tests.catalog.factory import remote


def _instances(series: int, n: int) -> list[InstanceRecord]:
    return [InstanceRecord(f"1.3.{series}.{k}", f"C/S{series}/1.3.{series}.{k}.dcm", 10,
                           f"{k:032x}") for k in range(n)]


async def test_first_instance_paths_and_sop_classes_for_many_series(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(4)])
    claimed = await catalog.claim("w", 4, lease_seconds=30)
    done = sorted(c.series_uid for c in claimed)[:3]
    for k, uid in enumerate(done):
        await catalog.complete(uid, "w", local_path=f"C/S{k}", instances=_instances(k, 3 + k))
    asked = [*done, remote(3).series_uid, "9.9.9"]  # one not done, one unknown

    paths = await catalog.first_instance_paths(asked)

    assert paths == {uid: f"C/S{k}/1.3.{k}.0.dcm" for k, uid in enumerate(done)}
    await catalog.set_sop_classes({done[0]: "1.2.840.10008.5.1.4.1.1.2",
                                   done[2]: "1.2.840.10008.5.1.4.1.1.481.3"})
    got = {r.series_uid: r.sop_class_uid
           async for r in catalog.iter_series(states=[SeriesState.DONE])}
    assert got == {done[0]: "1.2.840.10008.5.1.4.1.1.2", done[1]: None,
                   done[2]: "1.2.840.10008.5.1.4.1.1.481.3"}
    await catalog.set_sop_classes({})  # nothing to write is not an error
