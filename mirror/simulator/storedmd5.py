"""Per-image MD5s stored unlike the file's digest, as on the real server (tcia-api-v4.md §1, §5).

Kinds: ``blank`` (CTP stores ``" "`` when it has no digest: md5hashes.csv row ``name, ``),
``null`` (a NULL column: ``name,`` with NewFileNames=Yes, a cut-short ZIP otherwise, "null"
in the hierarchy) and ``short`` (CTP's ``BigInteger.toString(16)`` drops leading zeros:
only for digests that start with 0).
"""

from __future__ import annotations

from mirror.errors import UsageError
from mirror.simulator.catalog import Catalog
from mirror.simulator.model import Instance

KINDS = ("short", "blank", "null")


def stored_value(inst: Instance, kind: str) -> str | None:
    if kind == "blank":
        return " "
    if kind == "null":
        return None
    if kind == "short":
        if not inst.md5.startswith("0"):
            raise UsageError(f"SOP {inst.sop_uid}: its MD5 {inst.md5} has no leading zero")
        return inst.md5.lstrip("0")
    raise UsageError(f"unknown stored MD5 kind {kind!r}; use one of {', '.join(KINDS)}")


def choose(cat: Catalog, *, short: int = 0, blank: int = 0, null: int = 0,
           collection: str | None = None, sop_uids: dict[str, str] | None = None
           ) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(overrides keyed by blob, the same keyed by SOP UID) for the chosen instances.

    Named *sop_uids* map to a kind each; counts pick the first instances in SOP UID order
    (deterministic), "short" among the digests that start with 0.
    """
    if collection is not None and collection not in cat.collections:
        raise UsageError(f"unknown collection {collection!r}")
    picked: dict[str, str] = {}
    for sop, kind in (sop_uids or {}).items():
        if sop not in cat.sop_index:
            raise UsageError(f"unknown SOPInstanceUID {sop!r}")
        picked[sop] = kind
    pool = sorted(i for s in cat.series.values() if collection in (None, s.collection)
                  for i in (x.sop_uid for x in s.instances)
                  if i not in picked and cat.sop_index[i][1].blob not in cat.stored_md5)
    for kind, count in (("short", short), ("blank", blank), ("null", null)):
        fits = [sop for sop in pool if kind != "short"
                or cat.sop_index[sop][1].md5.startswith("0")]
        if count > len(fits):
            raise UsageError(f"wants {count} {kind} MD5s, only {len(fits)} instances fit")
        for sop in fits[:count]:
            picked[sop] = kind
            pool.remove(sop)
    by_blob: dict[str, str | None] = {}
    by_sop: dict[str, str | None] = {}
    for sop, kind in picked.items():
        inst = cat.sop_index[sop][1]
        by_blob[inst.blob] = by_sop[sop] = stored_value(inst, kind)
    return by_blob, by_sop
