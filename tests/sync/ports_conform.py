"""Checked by mypy (tests/sync/test_ports.py), never run: the real client and catalog
satisfy the sync engine's ports, so a renamed or re-typed method fails type checking."""

from mirror.catalog import Catalog
from mirror.sync.ports import HashCatalog, HashSource, Limiter, PoolCatalog, SeriesSource
from mirror.tcia import TciaClient
from mirror.tcia.ratelimit import RateLimiter


def client_serves_the_job(client: TciaClient) -> SeriesSource:
    return client


def client_serves_the_hash_check(client: TciaClient) -> HashSource:
    return client


def catalog_serves_the_pool(catalog: Catalog) -> PoolCatalog:
    return catalog


def catalog_serves_the_hash_check(catalog: Catalog) -> HashCatalog:
    return catalog


def limiter_paces_the_hash_check(limiter: RateLimiter) -> Limiter:
    return limiter
